//! The applications service's tables, on SQLite and PostgreSQL alike. Handlers move data
//! through here; the rules live in `domain`.

mod applications;
mod awards;
mod checkpoints;
mod committee;
mod cycles;
mod enterprises;
mod programmes;
mod rechecks;
mod retention;
mod reviews;
mod revocations;
mod selection;

pub use applications::*;
pub use awards::*;
pub use checkpoints::*;
pub use committee::*;
pub use cycles::*;
pub use enterprises::*;
pub use programmes::*;
pub use rechecks::*;
pub use retention::*;
pub use reviews::*;
pub use revocations::*;
pub use selection::*;
