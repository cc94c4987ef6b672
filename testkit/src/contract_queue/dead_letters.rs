//! Dead letters as an operator reads and replays them (`tirage-worker admin dead-letters`):
//! read in place, any number of times; replayed by choice, as first attempts on their lane;
//! a letter that never parsed is never replayed.

use std::collections::HashSet;
use tirage_ports::TraceContext;

use tirage_ports::job_queue::{Lane, WorkItem};

use super::{QueueHarness, job, next, nothing};

const MALFORMED: &[u8] = b"{\"kind\":\"resize\",\"batch_id\":42}";

pub async fn dead_letters_are_read_in_place_and_replayed_by_choice<H: QueueHarness>(h: &H) {
    let queue = h.queue();
    let items: Vec<WorkItem> = (0..3).map(|_| job()).collect();
    for item in &items {
        queue.publish(item, &TraceContext::none()).await.unwrap();
    }
    let mut stream = queue.consume(Lane::Resize, 4).await.unwrap();
    for item in &items {
        let d = next(&mut stream).await;
        assert_eq!(&d.item, item);
        d.handle.dead_letter("retries_exhausted").await.unwrap();
    }
    h.publish_raw(MALFORMED).await;
    nothing(&mut stream).await;

    for _ in 0..2 {
        let read = queue.dead_letters(10).await.unwrap();
        assert_eq!(read.len(), 4, "{read:?}");
        let parked: Vec<Option<WorkItem>> = read.iter().map(|l| l.item()).collect();
        assert_eq!(
            parked[..3],
            items.iter().cloned().map(Some).collect::<Vec<_>>()[..],
            "oldest first, read in place"
        );
        assert!(read[..3].iter().all(|l| l.reason == "retries_exhausted"));
        assert_eq!((read[3].body.as_slice(), read[3].item()), (MALFORMED, None));
    }
    assert_eq!(queue.dead_letters(2).await.unwrap().len(), 2);

    let chosen = items[1].clone();
    let replayed = queue
        .replay_dead_letters(10, &|item: &WorkItem| *item == chosen)
        .await
        .unwrap();
    assert_eq!(replayed, vec![items[1].clone()]);
    let d = next(&mut stream).await;
    assert_eq!((d.item.clone(), d.attempt), (items[1].clone(), 1));
    d.handle.ack().await.unwrap();
    nothing(&mut stream).await;

    let ids = |letters: Vec<tirage_ports::DeadLetter>| {
        letters.into_iter().map(|l| l.body).collect::<HashSet<_>>()
    };
    let body = |item: &WorkItem| serde_json::to_vec(item).unwrap();
    assert_eq!(
        ids(queue.dead_letters(10).await.unwrap()),
        HashSet::from([body(&items[0]), body(&items[2]), MALFORMED.to_vec()]),
        "the letters not chosen stay parked"
    );

    let replayed = queue.replay_dead_letters(10, &|_| true).await.unwrap();
    assert_eq!(
        replayed.iter().map(body).collect::<HashSet<_>>(),
        HashSet::from([body(&items[0]), body(&items[2])]),
        "every letter that parses, and only those"
    );
    for _ in 0..2 {
        let d = next(&mut stream).await;
        assert!(d.item == items[0] || d.item == items[2], "{:?}", d.item);
        d.handle.ack().await.unwrap();
    }
    let left = queue.dead_letters(10).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].body, MALFORMED, "a letter that never parsed stays");
    let taken = h.take_dead_letter().await.expect("the malformed letter");
    assert_eq!(taken.body, MALFORMED);
}
