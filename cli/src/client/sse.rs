//! Server-sent events: the parser that splits a byte stream into events, and the stream of
//! events read from an open `GET /v1/batches/{id}/events` answer.

use std::collections::VecDeque;

use reqwest::Response;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Splits a byte stream into server-sent events; feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer
            .push_str(&String::from_utf8_lossy(chunk).replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
                // Comments (`:`) and other fields (`id`, `retry`) carry nothing we use.
            }
            if !data.is_empty() {
                events.push(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
        events
    }
}

/// The events of an open event-stream answer, one at a time.
pub struct EventStream {
    response: Response,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
}

impl EventStream {
    pub fn new(response: Response) -> Self {
        EventStream {
            response,
            parser: SseParser::default(),
            pending: VecDeque::new(),
        }
    }

    /// The next event; `None` once the stream ends or breaks (the caller reconnects or
    /// polls, so why it ended does not matter).
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let chunk = self.response.chunk().await.ok()??;
            self.pending.extend(self.parser.push(&chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks_and_skip_comments() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nevent: prog").is_empty());
        let got = p.push(b"ress\r\ndata: {\"done\":1}\r\n\r\nevent: completed\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: "progress".into(),
                    data: "{\"done\":1}".into()
                },
                SseEvent {
                    event: "completed".into(),
                    data: "{}".into()
                },
            ]
        );
    }
}
