//! The applications service's tables, on SQLite and PostgreSQL alike. Handlers move data
//! through here; the rules live in `domain`.

mod applications;
mod awards;
mod cycles;
mod enterprises;
mod programmes;
mod reviews;
mod selection;

pub use applications::*;
pub use awards::*;
pub use cycles::*;
pub use enterprises::*;
pub use programmes::*;
pub use reviews::*;
pub use selection::*;
