//! How much memory one engine peer connection takes before negotiation: builds 500 and prints
//! the RSS growth per connection (`cargo run --release -p media-engine --example pc_memory`).

use media_engine::media::factory::{PcFactory, Role};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let f = PcFactory::new("127.0.0.1".parse()?, None, false, true)?;
    for role in [Role::Both, Role::Send, Role::Receive] {
        let before = rss_kib();
        let mut pcs = Vec::new();
        for i in 0..500 {
            pcs.push(f.build(&format!("ufrag{i:011}"), "passwordpasswordpassword", role)?);
        }
        let after = rss_kib();
        eprintln!("{role:?}: {} KiB per connection", (after - before) / 500);
        drop(pcs);
    }
    Ok(())
}
