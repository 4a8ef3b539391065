//! What stands between a parsed request and its answer going out: DNS cookies (both
//! transports) and response rate limiting (UDP only: TCP cannot be spoofed, and it is
//! where a limited client is sent to retry).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use hickory_proto::rr::RecordType;

use super::cookie::{CookieStatus, Cookies, Secrets};
use super::cookie_secret::{self, SecretFileError};
use super::rrl::{ResponseClass, Rrl, Verdict};
use super::rrl_config::{CookieConfig, RrlConfig};

/// Why the protections could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ShieldError {
    /// The cookie secret file is unusable.
    #[error("cookie secret: {0}")]
    Secret(#[from] SecretFileError),
    /// No random numbers from the operating system (for the secret or the table key).
    #[error("random source: {0}")]
    Random(#[from] std::io::Error),
}

/// Cookies and rate limiting of one server, shared by its UDP workers and TCP handler.
#[derive(Debug)]
pub struct Shield {
    cookies: Cookies,
    secret_file: Option<PathBuf>,
    rrl: Option<Rrl>,
}

impl Shield {
    /// As configured: reads the secret file (or makes a random secret) and allocates the
    /// rate-limiting table.
    pub fn new(rrl: &RrlConfig, cookies: &CookieConfig) -> Result<Shield, ShieldError> {
        let c = if cookies.enabled {
            let secrets = match &cookies.secret_file {
                Some(f) => cookie_secret::read(f)?,
                None => Secrets::random()?,
            };
            Cookies::new(secrets)
        } else {
            Cookies::disabled()
        };
        Ok(Shield {
            cookies: c,
            secret_file: cookies.secret_file.clone().filter(|_| cookies.enabled),
            rrl: if rrl.enabled {
                Some(Rrl::new(rrl)?)
            } else {
                None
            },
        })
    }

    /// No cookies, no rate limiting.
    pub fn off() -> Shield {
        Shield {
            cookies: Cookies::disabled(),
            secret_file: None,
            rrl: None,
        }
    }

    /// The cookie handling.
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// The secret file, when one is configured.
    pub fn secret_file(&self) -> Option<&PathBuf> {
        self.secret_file.as_ref()
    }

    /// Rereads the secret file (a rollover step); keeps the old secrets on error.
    pub fn reload_secrets(&self) -> Result<(), SecretFileError> {
        if let Some(f) = &self.secret_file {
            self.cookies.set_secrets(cookie_secret::read(f)?);
        }
        Ok(())
    }

    /// Whether a UDP response of `class` for `name` to `client` may go out. A client with
    /// a valid server cookie is never limited (it has shown it is not spoofed).
    #[inline]
    pub fn udp_verdict(
        &self,
        client: IpAddr,
        cookie: CookieStatus,
        class: ResponseClass,
        name: &[u8],
        qtype: RecordType,
        received: Instant,
    ) -> Verdict {
        match &self.rrl {
            Some(rrl) if cookie != CookieStatus::Valid => {
                rrl.check(client, class, name, qtype, received)
            }
            _ => Verdict::Send,
        }
    }
}
