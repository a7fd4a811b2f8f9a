//! The RCU core: domains, their grace-period machine and its public face.

pub(crate) mod batch;
pub(crate) mod config;
pub(crate) mod domain;
pub(crate) mod fence;
pub(crate) mod guard;
pub(crate) mod local;
pub(crate) mod machine;
pub(crate) mod reclaimer;
pub(crate) mod record;
pub(crate) mod retired;
pub(crate) mod stats;
pub(crate) mod unwind;
