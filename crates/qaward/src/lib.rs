//! What the `qaward` binary composes from the service crates, for the binary itself and for the
//! whole-system tests.

pub mod policy;

pub use policy::policy;
