//! Sending every input, with bounded concurrency: through presigned URLs when the server
//! hands them out (`POST /uploads`, `PUT`, then `complete`), as multipart otherwise.

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;
use tirage_core::wire::{UploadTicket, UploadsRequest};
use uuid::Uuid;

use super::inputs::Input;
use super::outcome::{UploadError, file_failure};
use super::progress::{Bars, CountedBody};
use crate::client::{Client, ClientError, UploadPart};
use crate::codes::LocalCode;
use crate::inputs::Failure;

/// Largest file list sent in one `POST /uploads` (the server's default limit is 500).
const TICKETS_PER_REQUEST: usize = 100;

/// Uploads every input; returns photo id → input index for those the server accepted.
pub async fn upload_all(
    client: &Client,
    batch: Uuid,
    inputs: &[Input],
    multipart_only: bool,
    concurrency: usize,
    bars: &Bars,
    failures: &mut Vec<Failure>,
) -> Result<HashMap<Uuid, usize>, UploadError> {
    let mut accepted = HashMap::new();
    let mut presigned = !multipart_only;
    for chunk_start in (0..inputs.len()).step_by(TICKETS_PER_REQUEST) {
        let chunk: Vec<usize> =
            (chunk_start..(chunk_start + TICKETS_PER_REQUEST).min(inputs.len())).collect();
        // Index → ticket, when the presigned path is in use for this chunk.
        let mut tickets: HashMap<usize, UploadTicket> = HashMap::new();
        if presigned {
            match tickets_for(client, batch, inputs, &chunk, bars, failures).await? {
                Some(got) if got.is_empty() => continue,
                Some(got) => tickets = got,
                None => presigned = false,
            }
        }
        let tickets = &tickets;
        let todo: Vec<usize> = chunk
            .iter()
            .copied()
            .filter(|i| !presigned || tickets.contains_key(i))
            .collect();
        let results: Vec<(usize, Result<Uuid, Failure>)> = futures::stream::iter(todo)
            .map(|i| async move {
                let input = &inputs[i];
                let result = match tickets.get(&i) {
                    Some(ticket) => upload_presigned(client, batch, input, ticket, bars).await,
                    None => upload_multipart(client, batch, input, bars).await,
                };
                (i, result)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (i, result) in results {
            match result {
                Ok(id) => {
                    accepted.insert(id, i);
                }
                Err(f) => {
                    bars.bytes.dec_length(inputs[i].size);
                    failures.push(f);
                }
            }
        }
    }
    Ok(accepted)
}

/// Presigned URLs for the inputs of `chunk`, by index. `None` when the server has no such
/// endpoint. Files the server refuses (too large, say) are recorded in `failures` and get
/// no ticket; an empty map means the whole chunk was refused.
async fn tickets_for(
    client: &Client,
    batch: Uuid,
    inputs: &[Input],
    chunk: &[usize],
    bars: &Bars,
    failures: &mut Vec<Failure>,
) -> Result<Option<HashMap<usize, UploadTicket>>, UploadError> {
    let mut refuse = |i: usize, e: &ClientError| {
        failures.push(file_failure(&inputs[i].path, e));
        bars.bytes.dec_length(inputs[i].size);
    };
    let request = |files: &[usize]| UploadsRequest {
        files: files.iter().map(|&i| inputs[i].upload_file()).collect(),
    };
    match client.request_uploads(batch, &request(chunk)).await {
        Ok(Some(list)) => Ok(Some(chunk.iter().copied().zip(list).collect())),
        Ok(None) => Ok(None),
        // One bad file refuses the whole list: ask file by file so the refusal lands on
        // the right one.
        Err(e) if refused(&e) && chunk.len() > 1 => {
            let mut tickets = HashMap::new();
            for &i in chunk {
                match client.request_uploads(batch, &request(&[i])).await {
                    Ok(Some(mut one)) if one.len() == 1 => {
                        if let Some(t) = one.pop() {
                            tickets.insert(i, t);
                        }
                    }
                    Ok(_) => {}
                    Err(e) if refused(&e) => refuse(i, &e),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Some(tickets))
        }
        Err(e) if refused(&e) => {
            for &i in chunk {
                refuse(i, &e);
            }
            Ok(Some(HashMap::new()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The server refused the files themselves (closed or full batch, too large, invalid):
/// those files fail, the run goes on.
fn refused(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Api {
            status: 409 | 413 | 422,
            ..
        }
    )
}

async fn read_file(input: &Input) -> Result<Bytes, Failure> {
    tokio::fs::read(&input.path)
        .await
        .map(Bytes::from)
        .map_err(|e| Failure::io(&input.path, &e))
}

/// Uploads one file as one multipart request; returns its photo id.
async fn upload_multipart(
    client: &Client,
    batch: Uuid,
    input: &Input,
    bars: &Bars,
) -> Result<Uuid, Failure> {
    let body = CountedBody::new(read_file(input).await?, &bars.bytes);
    let filename = input.filename();
    let part = UploadPart {
        filename: &filename,
        content_type: input.content_type,
        len: body.size(),
    };
    // The same key on every retry: a retry after a lost answer registers the same photo
    // instead of a second one.
    let idempotency_key = Uuid::new_v4().to_string();
    let accepted = client
        .upload_photo(batch, part, &idempotency_key, || body.body())
        .await
        .map_err(|e| file_failure(&input.path, &e))?;
    accepted.photos.first().map(|p| p.id).ok_or_else(|| {
        Failure::new(
            &input.path,
            LocalCode::ProtocolError,
            "no photo in the answer",
        )
    })
}

/// PUTs one file to its presigned URL, then completes it.
async fn upload_presigned(
    client: &Client,
    batch: Uuid,
    input: &Input,
    ticket: &UploadTicket,
    bars: &Bars,
) -> Result<Uuid, Failure> {
    let body = CountedBody::new(read_file(input).await?, &bars.bytes);
    client
        .put_presigned(ticket, body.size(), || body.body())
        .await
        .map_err(|e| file_failure(&input.path, &e))?;
    client
        .complete_upload(batch, ticket.photo_id)
        .await
        .map_err(|e| file_failure(&input.path, &e))?;
    Ok(ticket.photo_id)
}
