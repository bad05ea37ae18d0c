//! Scoring's rules, pure: no I/O, no clock.
//!
//! | module    | rules                                                                 |
//! |-----------|-----------------------------------------------------------------------|
//! | `rubric`  | the GB/T 19580 rubric as versioned data, and its arithmetic    |
//! | `group`   | who sits in a group or panel, and who scores             |
//! | `sheet`   | item percentages in 5 % steps, item scores, bands, consensus (R-11, R-12) |
//! | `lifecycle` | a sheet drafted, submitted and sealed, corrected, signed; read-only after release (R-11, R-12, R-14, R-51) |
//! | `results` | thresholds, weights, composite, candidates, ties, vacancy (R-13 to R-18) |
//! | `charts`  | the profile and distribution pictures, as SVG              |
//! | `report`  | the feedback report as a printable Chinese HTML document        |
//! | `leaders` | the group leaders' meeting after the site visits, before their release (Art. 16(5)4) |
//! | `review_log` | the hearing log and the site-visit log: what makes them complete (Art. 16(4-5)) |

pub mod charts;
pub mod group;
pub mod leaders;
pub mod lifecycle;
pub mod report;
pub mod results;
pub mod review_log;
pub mod rubric;
pub mod sheet;
