//! The counting forwarder in front of the local DynamoDB/SNS server (HTTPS with the test CA):
//! it forwards every request and counts DynamoDB's, SNS's, Secrets Manager's and KMS's.

use super::*;

/// DynamoDB and SNS requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Requests {
    pub(crate) dynamodb: u64,
    pub(crate) sns: u64,
}

/// What the forwarder in front of the local DynamoDB/SNS server has counted (Secrets Manager
/// and KMS, which go through it too, apart), and its trace: every exchange and every
/// connection opened, timed.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) dynamodb: std::sync::atomic::AtomicU64,
    pub(crate) sns: std::sync::atomic::AtomicU64,
    pub(crate) other: std::sync::atomic::AtomicU64,
    pub(crate) trace: Mutex<Trace>,
}

/// One request through the forwarder: its operation (`DynamoDB.GetItem`, `SNS.Publish`,
/// `SecretsManager.BatchGetSecretValue`, `KMS.Sign`), when it arrived, when it was answered.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) operation: String,
    pub(crate) arrived: Instant,
    pub(crate) answered: Instant,
}

#[derive(Default)]
pub(crate) struct Trace {
    pub(crate) exchanges: Vec<Exchange>,
    /// When each connection to the forwarder was opened (TCP accepted).
    pub(crate) connections: Vec<Instant>,
}

impl Trace {
    /// What happened between `from` and `to`.
    pub(crate) fn between(&self, from: Instant, to: Instant) -> (Vec<Exchange>, usize) {
        let exchanges = self
            .exchanges
            .iter()
            .filter(|e| e.arrived >= from && e.arrived <= to)
            .cloned()
            .collect();
        let connections = self
            .connections
            .iter()
            .filter(|&&at| at >= from && at <= to)
            .count();
        (exchanges, connections)
    }
}

/// The sequential network levels of some exchanges: groups of requests in flight together,
/// one after the other (a request that arrives after every earlier one was answered starts
/// a level; one that overlaps the level in flight joins it).
pub(crate) fn levels(exchanges: &[Exchange]) -> Vec<Vec<Exchange>> {
    let mut sorted = exchanges.to_vec();
    sorted.sort_by_key(|e| e.arrived);
    let mut levels: Vec<Vec<Exchange>> = Vec::new();
    let mut level_end: Option<Instant> = None;
    for exchange in sorted {
        match level_end {
            Some(end) if exchange.arrived < end => {
                level_end = Some(end.max(exchange.answered));
                if let Some(level) = levels.last_mut() {
                    level.push(exchange);
                }
            }
            _ => {
                level_end = Some(exchange.answered);
                levels.push(vec![exchange]);
            }
        }
    }
    levels
}

/// The operation a request names: the JSON protocols' `X-Amz-Target`, SNS's `Action=`.
fn operation_of(target: &str, body: &[u8]) -> String {
    if let Some((service, operation)) = target.split_once('.') {
        let service = match service {
            s if s.starts_with("DynamoDB") => "DynamoDB",
            s if s.starts_with("secretsmanager") => "SecretsManager",
            s if s.starts_with("TrentService") => "KMS",
            other => other,
        };
        return format!("{service}.{operation}");
    }
    let body = String::from_utf8_lossy(body);
    let action = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown");
    format!("SNS.{action}")
}

impl Counts {
    pub(crate) fn now(&self) -> Requests {
        use std::sync::atomic::Ordering::SeqCst;
        Requests {
            dynamodb: self.dynamodb.load(SeqCst),
            sns: self.sns.load(SeqCst),
        }
    }
}

/// The forwarder's TLS: the server certificate of `scripts/test-ca.py`'s test CA.
pub(crate) fn tls_acceptor(dir: &Path) -> Result<tokio_rustls::TlsAcceptor, BoxError> {
    use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs =
        CertificateDer::pem_file_iter(dir.join("server.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))?;
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Forwards every request to `upstream` (the local DynamoDB/SNS server) and counts it:
/// DynamoDB's carry `X-Amz-Target: DynamoDB_20120810.<Operation>`, Secrets Manager's and
/// KMS's theirs, the rest are SNS's. With `tls`, it is an HTTPS endpoint, as AWS's are.
pub(crate) async fn start_counting_forwarder(
    upstream: String,
    counts: Arc<Counts>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<String, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let address = format!("{scheme}://{}", listener.local_addr()?);
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counts
                .trace
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .connections
                .push(Instant::now());
            let (client, upstream, counts) = (client.clone(), upstream.clone(), counts.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (client, upstream, counts) =
                        (client.clone(), upstream.clone(), counts.clone());
                    async move {
                        let arrived = Instant::now();
                        let target = request
                            .headers()
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let counter = if target.starts_with("DynamoDB") {
                            &counts.dynamodb
                        } else if target.is_empty() {
                            &counts.sns
                        } else {
                            &counts.other
                        };
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let operation = operation_of(target.as_str(), &body);
                        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                        let mut forwarded = Request::builder()
                            .method(parts.method)
                            .uri(format!("{upstream}{path}"));
                        for (name, value) in &parts.headers {
                            if !hop_by_hop(name) {
                                forwarded = forwarded.header(name, value);
                            }
                        }
                        let answer = match forwarded.body(Full::new(body)) {
                            Ok(forwarded) => client.request(forwarded).await.ok(),
                            Err(_) => None,
                        };
                        let response = match answer {
                            Some(answer) => {
                                let (mut parts, body) = answer.into_parts();
                                // moto's server closes every connection (`Connection:
                                // close`); AWS's keep theirs open, and so does this hop.
                                let names: Vec<_> = parts.headers.keys().cloned().collect();
                                for name in names.iter().filter(|n| hop_by_hop(n)) {
                                    parts.headers.remove(name);
                                }
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                Response::from_parts(parts, Full::new(body))
                            }
                            None => {
                                let mut failed = Response::new(Full::new(Bytes::new()));
                                *failed.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                                failed
                            }
                        };
                        counts
                            .trace
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .exchanges
                            .push(Exchange {
                                operation,
                                arrived,
                                answered: Instant::now(),
                            });
                        Ok::<_, Infallible>(response)
                    }
                });
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Ok(address)
}

/// Headers about one connection, not the request: not forwarded either way.
pub(crate) fn hop_by_hop(name: &hyper::header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te"
    )
}
