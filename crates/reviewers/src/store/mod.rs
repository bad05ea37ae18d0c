//! The reviewer pool's tables, on SQLite and PostgreSQL alike. Stores move data; the rules
//! are in `domain/`. Every function that changes something takes the caller's transaction,
//! so the change, its audit record and its outbox event commit together.

mod conflicts;
mod draws;
mod facts;
mod panels;
mod programmes;
mod records;
mod registry;

pub use conflicts::*;
pub use draws::*;
pub use facts::*;
pub use panels::*;
pub use programmes::*;
pub use records::*;
pub use registry::*;
