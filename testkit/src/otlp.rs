//! An OTLP/HTTP trace receiver, as a collector's `otlp` receiver is on its port 4318: it
//! accepts `POST /v1/traces` with an `ExportTraceServiceRequest` protobuf body (the
//! protocol's own message types, from `opentelemetry-proto`), answers 200 with an empty
//! `ExportTraceServiceResponse`, and keeps every span it was sent, flattened with its
//! service's name. Silenced, it accepts connections and never answers: a collector that hangs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::receivers::read_request;

/// One received span.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The span kind as OTLP numbers it (2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
}

impl Span {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;
pub const KIND_PRODUCER: i32 = 4;
pub const KIND_CONSUMER: i32 = 5;

pub struct Receiver {
    pub port: u16,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<u64>>,
    silent: Arc<AtomicBool>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver {
            port,
            spans: Arc::default(),
            requests: Arc::default(),
            silent: Arc::default(),
        };
        let (spans, requests, silent) = (
            receiver.spans.clone(),
            receiver.requests.clone(),
            receiver.silent.clone(),
        );
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (spans, requests, silent) = (spans.clone(), requests.clone(), silent.clone());
                tokio::spawn(serve(socket, spans, requests, silent));
            }
        });
        receiver
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for this receiver.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on, read requests and never answer them (connections stay open).
    pub fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Export requests received (answered or not).
    pub fn requests(&self) -> u64 {
        *self.requests.lock().unwrap()
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `found` finds what it looks for in the spans received so far.
    pub async fn wait_for<T>(&self, within: Duration, found: impl Fn(&[Span]) -> Option<T>) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = found(&self.spans()) {
                return t;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .spans()
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {:?} kind {} trace {} span {} parent {}",
                            s.service, s.name, s.kind, s.trace_id, s.span_id, s.parent_span_id
                        )
                    })
                    .collect();
                panic!(
                    "not found within {within:?} in the {} spans received:\n{}",
                    seen.len(),
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One keep-alive connection: requests one after the other.
async fn serve(
    mut socket: TcpStream,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<u64>>,
    silent: Arc<AtomicBool>,
) {
    let mut buffered = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut socket, &mut buffered).await else {
            return;
        };
        *requests.lock().unwrap() += 1;
        if silent.load(Ordering::SeqCst) {
            // Hold the connection, answer nothing, until the exporter gives up on it.
            let mut sink = [0u8; 1024];
            while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        let status = if !head.starts_with("POST /v1/traces ") {
            "404 Not Found"
        } else {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(request) => {
                    spans.lock().unwrap().extend(flatten(request));
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            }
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if socket.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .and_then(|attrs| {
                attrs
                    .into_iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v)
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    out
}

fn attributes(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}
