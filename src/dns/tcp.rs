//! TCP: hickory-server's listener (framing, idle timeouts, pipelining) with Roundel's
//! answers.
//!
//! The handler parses the raw request with the same parser as UDP and asks the same
//! engine; only the encoding differs (hickory's message builder, no size limit).

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_server::proto::rr::{Name, Record, RecordType};
use hickory_server::proto::serialize::binary::BinDecoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::shield::Shield;
use super::stats::{DnsStats, Transport};
use super::wire::{self, MAX_UDP_PAYLOAD, Parsed};
use crate::answer::{Owner, Question, Response, Section, answer};
use crate::zone::SnapshotCell;
use std::time::{Duration, Instant};

/// How long an idle TCP connection is kept open (RFC 7766 section 6.2.3 suggests seconds).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection (hickory-dns uses the same).
pub const TCP_RESPONSE_QUEUE: usize = 32;

/// Answers DNS over TCP from the current snapshot.
pub struct TcpHandler {
    cell: Arc<SnapshotCell>,
    stats: Arc<DnsStats>,
    shield: Arc<Shield>,
}

impl TcpHandler {
    /// A handler reading from `cell`; `shield` answers cookies (no rate limit on TCP).
    pub fn new(cell: Arc<SnapshotCell>, stats: Arc<DnsStats>, shield: Arc<Shield>) -> Self {
        Self {
            cell,
            stats,
            shield,
        }
    }
}

fn records(section: &Section<'_>, qname: &Name) -> Vec<Record> {
    section
        .iter()
        .map(|rr| {
            let owner = match rr.owner {
                Owner::Query => qname.clone(),
                Owner::Name(name, _) => name.clone(),
            };
            Record::from_rdata(owner, rr.ttl, rr.rdata.data.clone())
        })
        .collect()
}

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let received = Instant::now();
        let src = request.src();
        self.stats.note_tcp_client(src, TCP_IDLE_TIMEOUT);
        let snapshot = self.cell.load_full();
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let qname = request
            .queries
            .queries()
            .first()
            .map(|q| q.original().name().clone())
            .unwrap_or_else(Name::root);
        let mut qtype = request
            .queries
            .queries()
            .first()
            .map_or(RecordType::Unknown(0), |q| q.query_type());
        let mut echo_question = true;
        let (resp, edns) = match wire::parse(request.as_slice()) {
            // hickory-server drops these before calling us; nothing to send either way.
            Parsed::Drop => {
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                });
            }
            Parsed::Reject {
                rcode,
                mut edns,
                question,
                ..
            } => {
                let cookie = self.shield.cookies().process(edns.as_mut(), src.ip());
                self.stats.record_cookie(src.port() as usize, cookie);
                echo_question = question.is_some();
                (Response::with_rcode(rcode), edns)
            }
            Parsed::Query(mut q) => {
                let cookie = self.shield.cookies().process(q.edns.as_mut(), src.ip());
                self.stats.record_cookie(src.port() as usize, cookie);
                let question = Question {
                    qname: q.qname(),
                    qtype: q.qtype,
                    client: q.client(src.ip()),
                };
                qtype = q.qtype;
                (answer(&snapshot, &question), q.edns)
            }
        };
        metadata.authoritative = resp.authoritative;
        metadata.response_code = resp.rcode;
        let answers = records(&resp.answer, &qname);
        let authorities = records(&resp.authority, &qname);
        let additionals = records(&resp.additional, &qname);
        let edns_out = edns.map(|e| {
            let mut out = Edns::new();
            out.set_max_payload(MAX_UDP_PAYLOAD);
            out.set_version(0);
            out.set_dnssec_ok(e.dnssec_ok);
            if let Some(code) = resp.ede {
                out.options_mut()
                    .insert(EdnsOption::Unknown(15, code.to_be_bytes().to_vec()));
            }
            if let Some(c) = e.cookie {
                let mut data = c.client.to_vec();
                data.extend_from_slice(c.server());
                out.options_mut().insert(EdnsOption::Unknown(10, data));
            }
            if let Some(ecs) = e.ecs {
                let scope = resp.ecs_scope.min(ecs.source_prefix);
                out.options_mut()
                    .insert(EdnsOption::Subnet(ClientSubnet::new(
                        ecs.addr,
                        ecs.source_prefix,
                        scope,
                    )));
            }
            out
        });
        // A message rejected before its question was understood echoes none (as UDP does).
        let no_queries =
            Queries::read(&mut BinDecoder::new(&[]), 0).expect("reading no questions cannot fail");
        let queries = if echo_question {
            &request.queries
        } else {
            &no_queries
        };
        let builder = MessageResponseBuilder::new(queries, edns_out.as_ref());
        let response = builder.build(
            metadata,
            answers.iter(),
            authorities.iter(),
            std::iter::empty(),
            additionals.iter(),
        );
        if super::query_log() {
            super::log_query(
                Transport::Tcp,
                src.ip(),
                &crate::zone::name::key_of(&qname),
                qtype,
                resp.rcode,
                resp.answer.len(),
            );
        }
        let zone = resp.zone.map(|z| z.index);
        // Shards by client port: TCP handlers run on any runtime thread at once.
        let shard = src.port() as usize;
        self.stats.record(
            shard,
            zone,
            qtype,
            resp.rcode,
            Transport::Tcp,
            false,
            received.elapsed(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "TCP response not sent");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
