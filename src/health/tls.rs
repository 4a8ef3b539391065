//! TLS client configurations for HTTPS checks, built once per process with the `ring`
//! provider (reqwest is built without one, to avoid aws-lc's long C build).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn finish(mut c: ClientConfig) -> ClientConfig {
    // reqwest is built without HTTP/2; say so in ALPN rather than let a server pick h2.
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c
}

/// Builds both configurations now, off the async runtime: loading the system trust store
/// reads files, which must not stall a runtime thread (or a probe's first check). Later
/// calls find them built.
pub async fn warm() {
    let _ = tokio::task::spawn_blocking(|| {
        let _ = verifying();
        let _ = insecure();
    })
    .await;
}

/// The config that verifies certificates against the system trust store.
pub fn verifying() -> Result<ClientConfig, String> {
    static CONFIG: OnceLock<Result<ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_platform_verifier()
                .map_err(|e| format!("system trust store: {e}"))
                .map(|b| finish(b.with_no_client_auth()))
        })
        .clone()
}

/// The config for `verify_tls = false`: any certificate is accepted, but the handshake
/// signatures are still checked (the connection is still TLS, just unauthenticated).
pub fn insecure() -> Result<ClientConfig, String> {
    static CONFIG: OnceLock<Result<ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let p = provider();
            Ok(finish(
                ClientConfig::builder_with_provider(p.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAny(p)))
                    .with_no_client_auth(),
            ))
        })
        .clone()
}

#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
