//! One DNS listener (UDP and TCP on one address), answering from a [`Registry`] and forwarding the rest.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use super::DnsError;
use super::registry::{Forwarding, NameAnswer, Registry};
use super::upstream::Upstream;

/// Every berth answer has TTL 0: containers come and go, and clients must not cache them.
const TTL: u32 = 0;
/// Idle TCP connections are closed after this long.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running listener; dropping it without [`DnsServer::stop`] leaves the tasks running until the runtime ends.
pub struct DnsServer {
    server: hickory_server::Server<Handler>,
    addr: SocketAddr,
}

impl DnsServer {
    /// Listen on `listen` (UDP and TCP; port 0 picks a free port, the same for both). The address must already
    /// be assigned to an interface (the bridge's gateway address), else binding fails.
    pub async fn start(listen: SocketAddr, registry: Arc<Registry>, upstream: Arc<Upstream>) -> Result<Self, DnsError> {
        let bind_err = |e| DnsError::Bind(listen, e);
        let udp = UdpSocket::bind(listen).await.map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        let tcp = TcpListener::bind(addr).await.map_err(|e| DnsError::Bind(addr, e))?;
        let mut server = hickory_server::Server::new(Handler { registry, upstream });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 1);
        Ok(Self { server, addr })
    }

    /// The address served (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop listening and wait for the listener tasks to end.
    pub async fn stop(mut self) -> Result<(), DnsError> {
        self.server.shutdown_gracefully().await.map_err(|e| DnsError::Server(e.to_string()))
    }
}

struct Handler {
    registry: Arc<Registry>,
    upstream: Arc<Upstream>,
}

/// What to send back.
enum Reply {
    Records(Vec<Record>),
    Code(ResponseCode),
    Forwarded(Message),
}

impl Handler {
    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
            return Reply::Code(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Reply::Code(ResponseCode::FormErr);
        };
        let client = request.src().ip();
        let query = info.query.original();
        let qname = query.name();
        match query.query_type() {
            RecordType::PTR => {
                if let Some(ip) = arpa_address(qname)
                    && let Some(target) = self.registry.reverse(client, ip)
                {
                    return match Name::from_ascii(format!("{target}.")) {
                        Ok(target) => {
                            Reply::Records(vec![Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(target)))])
                        }
                        Err(_) => Reply::Code(ResponseCode::ServFail),
                    };
                }
            }
            qtype => {
                if let NameAnswer::Known { v4, v6 } = self.registry.resolve(client, &info.query.name().to_string()) {
                    // A berth name: answer what it has, and nothing (NODATA) for other types; never forward it.
                    let records = match qtype {
                        RecordType::A => {
                            v4.into_iter().map(|ip| Record::from_rdata(qname.clone(), TTL, RData::A(A(ip)))).collect()
                        }
                        RecordType::AAAA => v6
                            .into_iter()
                            .map(|ip| Record::from_rdata(qname.clone(), TTL, RData::AAAA(AAAA(ip))))
                            .collect(),
                        _ => Vec::new(),
                    };
                    return Reply::Records(records);
                }
            }
        }
        self.forward(request, client).await
    }

    async fn forward(&self, request: &Request, client: IpAddr) -> Reply {
        let servers = match self.registry.forwarding(client) {
            Some(Forwarding::Refuse) => return Reply::Code(ResponseCode::Refused),
            Some(Forwarding::Servers(s)) => s,
            Some(Forwarding::Host) | None => self.upstream.servers().as_slice().into(),
        };
        if servers.is_empty() {
            return Reply::Code(ResponseCode::ServFail);
        }
        let tcp = request.protocol() == Protocol::Tcp;
        match self.upstream.forward(&servers, request.as_slice(), tcp).await {
            Ok(raw) => match Message::from_vec(&raw) {
                Ok(message) => Reply::Forwarded(message),
                Err(e) => {
                    tracing::debug!(error = %e, "undecodable upstream reply");
                    Reply::Code(ResponseCode::ServFail)
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "forwarding failed");
                Reply::Code(ResponseCode::ServFail)
            }
        }
    }
}

/// The address of a full-length `in-addr.arpa`/`ip6.arpa` name.
fn arpa_address(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request).await;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let sent = match &reply {
            Reply::Records(records) => {
                metadata.authoritative = true;
                let response =
                    MessageResponseBuilder::new(&request.queries, None).build(metadata, records.iter(), [], [], []);
                response_handle.send_response(response).await
            }
            Reply::Code(code) => {
                metadata.response_code = *code;
                let response = MessageResponseBuilder::new(&request.queries, None).build_no_records(metadata);
                response_handle.send_response(response).await
            }
            Reply::Forwarded(upstream) => {
                metadata.response_code = upstream.metadata.response_code;
                metadata.authoritative = upstream.metadata.authoritative;
                metadata.truncation = upstream.metadata.truncation;
                metadata.authentic_data = upstream.metadata.authentic_data;
                metadata.recursion_available = upstream.metadata.recursion_available;
                let response = MessageResponseBuilder::new(&request.queries, upstream.edns.as_ref()).build(
                    metadata,
                    upstream.answers.iter(),
                    upstream.authorities.iter(),
                    [],
                    upstream.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
        };
        match sent {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot send a DNS reply");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header { metadata: failed, counts: Default::default() })
            }
        }
    }
}
