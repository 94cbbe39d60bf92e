//! [`FilteredHost`]: an address that drops every TCP packet, as a firewall does: the far end of
//! a veth pair in a network namespace the test makes (and removes) itself.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{ip_steps, is_root, require, tool};

/// A network namespace with a veth pair whose far end drops all TCP; removed on drop. Each test
/// process takes its own /30 of TEST-NET-2 (198.51.100.0/24), so two runs at once do not route
/// into each other's namespace.
pub struct FilteredHost {
    namespace: String,
    host_side: String,
    near: String,
    /// The address that never answers.
    pub far: String,
}

/// The nftables rule set loaded in the namespace: every TCP packet coming in is dropped.
const DROP_TCP: &str = "table inet soquete_test {\n chain input {\n  type filter hook input priority 0; policy accept;\n  meta l4proto tcp drop\n }\n}\n";

impl FilteredHost {
    /// Makes the namespace, the pair and the rule; None (the test is skipped, or fails under
    /// CI) without root, `ip` and `nft`, or when a step fails.
    pub fn create() -> Option<FilteredHost> {
        if !require(
            is_root() && tool("ip") && tool("nft"),
            "root, ip and nft, for a network namespace",
        ) {
            return None;
        }
        let id = std::process::id() % 100_000;
        let block = 4 * (1 + std::process::id() % 62);
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
        if !ip_steps(&steps) {
            return None;
        }
        let loaded = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .is_ok_and(|mut nft| {
                let written = nft
                    .stdin
                    .take()
                    .is_some_and(|mut stdin| stdin.write_all(DROP_TCP.as_bytes()).is_ok());
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
