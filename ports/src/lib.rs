//! The ports: small traits for everything Tirage depends on. Each has a production adapter
//! (S3, AMQP, Redis) and an embedded one (file system, in-process, in-memory); one contract
//! test suite per trait (in `tirage-testkit`) runs against both. Also the one decision
//! made over them that the API and the workers share: handing a completed batch's
//! finalisation off (`completion`).

pub mod completion;
pub mod effects;
pub mod job_queue;
pub mod object_store;
pub mod state_error;
pub mod state_store;
pub mod upkeep;

pub use effects::{Effects, claim_field};
pub use job_queue::{Delivery, DeliveryHandle, JobQueue, JobStream, Lane, QueueError, WorkItem};
pub use object_store::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
};
pub use state_store::{
    Authorize, Authorized, CloseResult, PendingUpload, PhotoPage, ProgressFeed, RateDecision,
    RecordResult, Session, SessionQuota, SessionRate, StateError, StateStore, session_rate_key,
};
pub use upkeep::{ConsumedMark, IndexedBatch, Upkeep};
