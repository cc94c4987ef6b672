//! The [`StateStore`](tirage_ports::StateStore) contract, written once and run against
//! every adapter; the cases are grouped by concern.

mod batches;
mod caps;
mod harness;
mod lifetime;
mod runs;
mod sessions;
mod storage;
mod streams;
mod upkeep;

pub use batches::{
    add_photos_limit_and_closed, batch_lifecycle, closing_a_finished_batch_completes_it,
    exactly_once_under_concurrent_duplicates, pagination,
};
pub use caps::{
    open_batches_capped_per_owner, pending_uploads_count_against_the_limit,
    sessions_capped_per_creator,
};
pub use harness::{StateHarness, done, failed, new_batch, photos};
pub use lifetime::{batch_expires, delete_batch, effects_once, pending_uploads};
pub use runs::{
    a_live_hold_makes_copies_wait_and_a_lapsed_one_counts_a_crash,
    an_ended_run_never_counts_as_crashed,
};
pub use sessions::{authorize_in_one_call, rate_limit_window, sessions_slide};
pub use storage::{
    charges_last_until_the_batch_is_forgotten, requests_charged_in_bulk_count_on_the_session,
    stored_bytes_are_capped_per_session_and_address,
};
pub use streams::{progress_is_announced, stream_leases_cap_per_session};
pub use upkeep::{
    a_deleted_batch_is_swept_once_its_tickets_lapse,
    an_expired_batch_stays_indexed_until_forgotten, batches_are_indexed_by_expiry_until_forgotten,
    lease_has_one_holder_at_a_time, settled_batches_leave_the_unsettled_list,
    the_consumed_mark_only_rises, watch_tells_since_when_a_batch_is_unchanged,
};

/// Expands to one `#[tokio::test]` per contract case, each building its harness with
/// `$harness` (an async expression).
#[macro_export]
macro_rules! state_store_contract {
    ($harness:expr) => {
        $crate::state_store_contract!(@cases $harness;
            sessions_slide, batch_lifecycle, add_photos_limit_and_closed,
            closing_a_finished_batch_completes_it, exactly_once_under_concurrent_duplicates,
            pagination, batch_expires, pending_uploads, effects_once, rate_limit_window,
            authorize_in_one_call, delete_batch, progress_is_announced,
            stream_leases_cap_per_session,
            a_live_hold_makes_copies_wait_and_a_lapsed_one_counts_a_crash,
            an_ended_run_never_counts_as_crashed,
            sessions_capped_per_creator, open_batches_capped_per_owner,
            pending_uploads_count_against_the_limit, lease_has_one_holder_at_a_time,
            batches_are_indexed_by_expiry_until_forgotten,
            settled_batches_leave_the_unsettled_list,
            an_expired_batch_stays_indexed_until_forgotten,
            a_deleted_batch_is_swept_once_its_tickets_lapse,
            watch_tells_since_when_a_batch_is_unchanged, the_consumed_mark_only_rises,
            stored_bytes_are_capped_per_session_and_address,
            charges_last_until_the_batch_is_forgotten,
            requests_charged_in_bulk_count_on_the_session);
    };
    (@cases $harness:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::contract_state::$case(&harness).await;
            }
        )*
    };
}
