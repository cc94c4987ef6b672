//! Writing a laid-out archive as a stream of chunks: each entry's local header, its bytes as
//! they arrive from their source (CRC-32 computed on the way), its data descriptor; then the
//! central directory in pieces and the end records. Nothing but one entry's current chunk
//! and the CRCs of the entries sent is held in memory.
//!
//! The length was announced before the first byte, so an entry whose source fails, or
//! yields more or fewer bytes than planned, ends the stream with an error instead of a
//! completed archive: the HTTP server then cuts the connection, and the client sees a body
//! shorter than its `Content-Length` — never a well-formed but wrong ZIP.

use std::future::Future;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tirage_ports::{ByteStream, ObjectBody};

use super::layout::Layout;
use super::records;

/// The central directory goes out in chunks of about this size.
const CENTRAL_CHUNK: usize = 64 * 1024;

/// Why an archive stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("entry {entry}: {message}")]
    Source { entry: String, message: String },
    #[error("entry {entry} has {actual} bytes or more, not the {planned} announced")]
    SizeChanged {
        entry: String,
        planned: u64,
        actual: u64,
    },
    #[error("the archive came out {written} bytes long, not the {planned} announced")]
    LengthMismatch { planned: u64, written: u64 },
}

enum Step {
    /// The local header of entry `.0` next (opening its source first).
    Entry(usize),
    Body {
        index: usize,
        stream: ByteStream,
        crc: crc32fast::Hasher,
        read: u64,
    },
    /// Central directory headers from entry `.0` on.
    Central(usize),
    Done,
}

struct Writer<O> {
    layout: Layout,
    open: O,
    crcs: Vec<u32>,
    step: Step,
    written: u64,
}

/// The archive `layout` describes, entry `i`'s bytes read from `open(i)`. Yields exactly
/// `layout.total_len()` bytes, or an error item after which it ends.
pub fn write<O, F, E>(layout: Layout, open: O) -> impl Stream<Item = Result<Bytes, WriteError>>
where
    O: FnMut(usize) -> F,
    F: Future<Output = Result<ObjectBody, E>>,
    E: std::fmt::Display,
{
    let writer = Writer {
        crcs: Vec::with_capacity(layout.entries().len()),
        layout,
        open,
        step: Step::Entry(0),
        written: 0,
    };
    futures::stream::try_unfold(writer, |mut writer| async move {
        let chunk = writer.next_chunk().await?;
        Ok(chunk.map(|c| (c, writer)))
    })
}

impl<O> Writer<O> {
    async fn next_chunk<F, E>(&mut self) -> Result<Option<Bytes>, WriteError>
    where
        O: FnMut(usize) -> F,
        F: Future<Output = Result<ObjectBody, E>>,
        E: std::fmt::Display,
    {
        loop {
            match std::mem::replace(&mut self.step, Step::Done) {
                Step::Entry(index) => {
                    let Some(fields) = self.layout.fields(index) else {
                        self.step = Step::Central(0);
                        continue;
                    };
                    let source = |message: String| WriteError::Source {
                        entry: fields.name.to_owned(),
                        message,
                    };
                    let body = (self.open)(index)
                        .await
                        .map_err(|e| source(e.to_string()))?;
                    if body.size != fields.size {
                        return Err(WriteError::SizeChanged {
                            entry: fields.name.to_owned(),
                            planned: fields.size,
                            actual: body.size,
                        });
                    }
                    let header = records::local_header(&fields);
                    self.step = Step::Body {
                        index,
                        stream: body.stream,
                        crc: crc32fast::Hasher::new(),
                        read: 0,
                    };
                    return Ok(Some(self.emit(header)));
                }
                Step::Body {
                    index,
                    mut stream,
                    mut crc,
                    read,
                } => {
                    let Some(fields) = self.layout.fields(index) else {
                        return Err(self.mismatch());
                    };
                    match stream.next().await {
                        Some(Ok(chunk)) => {
                            let read = read + chunk.len() as u64;
                            if read > fields.size {
                                return Err(WriteError::SizeChanged {
                                    entry: fields.name.to_owned(),
                                    planned: fields.size,
                                    actual: read,
                                });
                            }
                            crc.update(&chunk);
                            self.step = Step::Body {
                                index,
                                stream,
                                crc,
                                read,
                            };
                            if !chunk.is_empty() {
                                self.written += chunk.len() as u64;
                                return Ok(Some(chunk));
                            }
                        }
                        Some(Err(e)) => {
                            return Err(WriteError::Source {
                                entry: fields.name.to_owned(),
                                message: e.to_string(),
                            });
                        }
                        None if read != fields.size => {
                            return Err(WriteError::SizeChanged {
                                entry: fields.name.to_owned(),
                                planned: fields.size,
                                actual: read,
                            });
                        }
                        None => {
                            let crc = crc.finalize();
                            self.crcs.push(crc);
                            let descriptor = records::data_descriptor(&fields, crc);
                            self.step = Step::Entry(index + 1);
                            return Ok(Some(self.emit(descriptor)));
                        }
                    }
                }
                Step::Central(mut index) => {
                    let mut chunk = Vec::with_capacity(CENTRAL_CHUNK + 1024);
                    let mut finished = false;
                    while chunk.len() < CENTRAL_CHUNK {
                        match (self.layout.fields(index), self.crcs.get(index)) {
                            (Some(fields), Some(&crc)) => {
                                chunk.extend(records::central_header(&fields, crc));
                                index += 1;
                            }
                            (Some(_), None) => return Err(self.mismatch()),
                            (None, _) => {
                                chunk.extend(self.layout.end_records());
                                finished = true;
                                break;
                            }
                        }
                    }
                    let chunk = self.emit(chunk);
                    if !finished {
                        self.step = Step::Central(index);
                    } else if self.written != self.layout.total_len() {
                        return Err(self.mismatch());
                    }
                    return Ok(Some(chunk));
                }
                Step::Done => return Ok(None),
            }
        }
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Bytes {
        self.written += bytes.len() as u64;
        Bytes::from(bytes)
    }

    /// The bytes written so far disagree with the layout: a bug, reported rather than sent
    /// on as a corrupt archive.
    fn mismatch(&self) -> WriteError {
        WriteError::LengthMismatch {
            planned: self.layout.total_len(),
            written: self.written,
        }
    }
}
