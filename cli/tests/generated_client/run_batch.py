"""A whole batch through the Python client that openapi-python-client generated from the
server's own /openapi.json: a session, a batch, one photo uploaded as multipart and the
others through upload tickets, the batch closed, its progress followed until completed,
every rendition downloaded. Run by cli/tests/generated_client.rs, which generates the
client (package `tirage_client`, on PYTHONPATH) and checks what this writes.

usage: run_batch.py BASE_URL OUT_DIR PHOTO...
Writes each rendition to OUT_DIR/<photo file stem>_<size>.jpg and prints one JSON summary.
"""

import json
import mimetypes
import pathlib
import sys
import time

import httpx
from tirage_client import AuthenticatedClient, Client
from tirage_client.api.batches import close_batch, create_batch, get_batch
from tirage_client.api.photos import (
    complete_upload,
    create_uploads,
    get_rendition,
    list_photos,
    upload_photos,
)
from tirage_client.api.sessions import create_session
from tirage_client.models import (
    BatchView,
    CreateBatchRequest,
    PhotoList,
    PhotosAccepted,
    PhotoUploadForm,
    SessionCreated,
    UploadFile,
    UploadsCreated,
    UploadsRequest,
)
from tirage_client.types import File


def media_type(path: pathlib.Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def expect(value, kind, what):
    """The typed answer, or the reason it is not (an ErrorBody, None) as the failure."""
    if not isinstance(value, kind):
        sys.exit(f"{what}: expected {kind.__name__}, got {value!r}")
    return value


def main() -> None:
    base_url, out_dir, *photos = sys.argv[1:]
    out = pathlib.Path(out_dir)
    photos = [pathlib.Path(p) for p in photos]
    if len(photos) < 2:
        sys.exit("give at least two photos: one goes as multipart, the rest through tickets")

    session = expect(create_session.sync(client=Client(base_url=base_url)), SessionCreated, "session")
    client = AuthenticatedClient(base_url=base_url, token=session.token, timeout=httpx.Timeout(60.0))

    batch = expect(create_batch.sync(client=client, body=CreateBatchRequest()), BatchView, "batch")

    first = photos[0]
    with first.open("rb") as body:
        form = PhotoUploadForm(file=File(payload=body, file_name=first.name, mime_type=media_type(first)))
        accepted = expect(
            upload_photos.sync(batch.id, client=client, body=form, idempotency_key="generated-1"),
            PhotosAccepted,
            "multipart upload",
        )
    assert [p.filename for p in accepted.photos] == [first.name], accepted

    files = [UploadFile(filename=p.name, size=p.stat().st_size, content_type=media_type(p)) for p in photos[1:]]
    tickets = expect(
        create_uploads.sync(batch.id, client=client, body=UploadsRequest(files=files)),
        UploadsCreated,
        "upload tickets",
    )
    for ticket, path in zip(tickets.uploads, photos[1:], strict=True):
        put = httpx.request(
            ticket.method, ticket.url, content=path.read_bytes(), headers=ticket.headers.to_dict(), timeout=60.0
        )
        put.raise_for_status()
        completed = complete_upload.sync_detailed(batch.id, ticket.photo_id, client=client)
        if completed.status_code != 202:
            sys.exit(f"complete {path.name}: {completed.status_code} {completed.content!r}")

    closed = close_batch.sync_detailed(batch.id, client=client)
    if closed.status_code != 200:
        sys.exit(f"close: {closed.status_code} {closed.content!r}")

    progress = []
    deadline = time.monotonic() + 120
    while True:
        now = expect(get_batch.sync(batch.id, client=client), BatchView, "progress")
        progress.append([now.done, now.failed, now.total])
        if now.state == "completed":
            break
        if time.monotonic() > deadline:
            sys.exit(f"the batch did not complete in 120 s: {now!r}")
        time.sleep(0.2)

    listed = expect(list_photos.sync(batch.id, client=client), PhotoList, "photos")
    summary = {"batch": now.to_dict(), "progress": progress, "photos": []}
    for photo in listed.photos:
        stem = pathlib.Path(photo.filename).stem
        renditions = []
        for output in photo.outputs:
            got = get_rendition.sync_detailed(batch.id, photo.id, output.size, client=client)
            if got.status_code != 200:
                sys.exit(f"rendition {photo.filename} {output.size}: {got.status_code}")
            path = out / f"{stem}_{output.size}.jpg"
            path.write_bytes(got.content)
            renditions.append(
                {"size": output.size, "path": str(path), "bytes": output.bytes_, "width": output.width, "height": output.height}
            )
        summary["photos"].append(
            {"filename": photo.filename, "state": photo.state, "width": photo.width, "height": photo.height, "renditions": renditions}
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
