//! The `regulab` command (grows with the harness issue).

fn main() {
    println!("regulab {}", env!("CARGO_PKG_VERSION"));
}
