//! [`FilteredHost`]: an address that drops every TCP packet, as a firewall does: the far end of
//! a veth pair in a network namespace the test makes (and removes) itself.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{ip_steps, is_root, require, tool};

/// A network namespace with a veth pair whose far end drops all TCP; removed on drop. Each test
/// host takes its own /30 of TEST-NET-2 (198.51.100.0/24), so two at once (in one run or two) do
/// not route into each other's namespace.
pub struct FilteredHost {
    namespace: String,
    host_side: String,
    near: String,
    /// The address that never answers.
    pub far: String,
}

/// The hosts this process has made.
static CREATED: AtomicU32 = AtomicU32::new(0);

/// The nftables rule set loaded in the namespace, around the rule for incoming TCP.
fn rules(tcp: &str) -> String {
    format!(
        "table inet soquete_test {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n  meta l4proto tcp {tcp}\n }}\n}}\n"
    )
}

impl FilteredHost {
    /// Makes the namespace, the pair and the rule; None (the test is skipped, or fails under
    /// CI) without root, `ip` and `nft`, or when a step fails.
    pub fn create() -> Option<FilteredHost> {
        FilteredHost::with_rule("drop")
    }

    /// As [`FilteredHost::create`], with `tcp` the nftables verdict for incoming TCP, such as
    /// `reject with icmp type prot-unreachable`.
    pub fn with_rule(tcp: &str) -> Option<FilteredHost> {
        FilteredHost::make(Some(tcp))
    }

    /// A link with no host at the far address at all: ARP for it gets no answer.
    pub fn absent() -> Option<FilteredHost> {
        FilteredHost::make(None)
    }

    fn make(tcp: Option<&str>) -> Option<FilteredHost> {
        if !require(
            is_root() && tool("ip") && tool("nft"),
            "root, ip and nft, for a network namespace",
        ) {
            return None;
        }
        // Each host of this process takes the next /30 and names of its own.
        let n = CREATED.fetch_add(1, Ordering::Relaxed) % 10;
        let id = (std::process::id() % 100_000) * 10 + n;
        let block = 4 * (1 + (std::process::id() + n) % 62);
        let host = FilteredHost {
            namespace: format!("soq-probe-{id}"),
            host_side: format!("soqp{id}"),
            near: format!("198.51.100.{}", block + 1),
            far: format!("198.51.100.{}", block + 2),
        };
        let (ns, near, far, host_side) = (&host.namespace, &host.near, &host.far, &host.host_side);
        let peer = format!("soqq{id}");
        let steps = [
            format!("netns add {ns}"),
            format!("link add {host_side} type veth peer name {peer}"),
            format!("link set {peer} netns {ns}"),
            format!("addr add {near}/30 dev {host_side}"),
            format!("link set {host_side} up"),
            format!("-n {ns} addr add {far}/30 dev {peer}"),
            format!("-n {ns} link set {peer} up"),
        ];
        // Without a rule, nobody holds the far address.
        let steps = &steps[..if tcp.is_some() { 7 } else { 5 }];
        if !ip_steps(steps) {
            return None;
        }
        let Some(tcp) = tcp else {
            return Some(host);
        };
        let loaded = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .is_ok_and(|mut nft| {
                let written = nft
                    .stdin
                    .take()
                    .is_some_and(|mut stdin| stdin.write_all(rules(tcp).as_bytes()).is_ok());
                nft.wait().is_ok_and(|s| s.success()) && written
            });
        require(loaded, "nft to load the drop rule").then_some(host)
    }
}

impl Drop for FilteredHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_side])
            .status();
    }
}
