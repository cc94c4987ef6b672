//! The ports: small traits for everything Tirage depends on. Each has a production adapter
//! (S3, AMQP, Redis) and an embedded one (file system, in-process, in-memory); one contract
//! test suite per trait (in `tirage-testkit`) runs against both. Also the one decision
//! made over them that the API and the workers share: handing a completed batch's
//! finalisation off (`completion`).

pub mod batches;
pub mod cap;
pub mod clock;
pub mod completion;
pub mod dead_letters;
pub mod effects;
pub mod entropy;
pub mod job_queue;
pub mod object_store;
pub mod progress;
pub mod records;
pub mod runs;
pub mod sessions;
pub mod state_error;
pub mod state_store;
pub mod storage;
pub mod trace_context;
pub mod upkeep;
pub mod uploads;
pub mod work_item;

pub use batches::{Batches, CloseResult, PhotoPage};
pub use cap::Cap;
pub use clock::{Clock, SystemClock};
pub use dead_letters::{DeadLetter, DeadLetters};
pub use effects::{Effects, claim_field};
pub use entropy::{Entropy, OsEntropy};
pub use job_queue::{Delivery, DeliveryHandle, JobQueue, JobStream, Lane, QueueError, WorkItem};
pub use object_store::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};
pub use progress::{Progress, ProgressFeed};
pub use runs::{RecordResult, RunHold, RunStart, Runs};
pub use sessions::{
    Authorize, Authorized, ClientLimits, RateDecision, Session, SessionQuota, SessionRate,
    Sessions, session_rate_key,
};
pub use state_error::StateError;
pub use state_store::StateStore;
pub use storage::{
    ByteCap, CHARGE_GRACE, Charge, Payer, PayerKind, Storage, StorageCaps, StoredBytes,
};
pub use trace_context::TraceContext;
pub use upkeep::{ConsumedMark, IndexedBatch, Upkeep};
pub use uploads::{PendingUpload, PendingUploads};
