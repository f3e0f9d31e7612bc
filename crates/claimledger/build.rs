//! Rebuilds this package when a migration is added: `sqlx::migrate!` embeds `migrations/` at
//! compile time, and Cargo reruns a proc macro only when a file it already knows changes, so a new
//! migration file would otherwise leave the tests and binaries migrating to the previous schema.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
