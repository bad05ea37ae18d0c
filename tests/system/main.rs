//! Whole-system tests: each starts the built `qaward` binary as a child process on free
//! loopback ports with a fresh data directory, and talks to it as a client would.

mod audit_log;
mod bad_input;
mod clients;
mod consistency;
mod crash_safety;
mod cycle_across_processes;
mod demo;
mod draws;
mod faults;
mod gateway;
mod grpcio;
mod http_json;
mod manifests;
mod migrations;
mod outbox_notices;
mod personal_data;
mod policy;
mod postgres;
mod private_files;
mod serving;
mod shutdown;
mod startup_errors;
mod support;
mod telemetry;
mod tls;
mod trust;
mod views;
