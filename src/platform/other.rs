//! macOS and Windows specifics. Kept in one small file so it can be checked where such a target is
//! at hand; socket enumeration itself is netstat2's (`portable.rs`).

use std::ops::RangeInclusive;

/// macOS: the `net.inet.ip.portrange.first`/`last` sysctls (49152-65535 by default).
#[cfg(target_os = "macos")]
pub fn ephemeral_port_range() -> Option<RangeInclusive<u16>> {
    fn sysctl_u32(name: &std::ffi::CStr) -> Option<u32> {
        let mut value: libc::c_int = 0;
        let mut size = std::mem::size_of::<libc::c_int>();
        // SAFETY: `value` and `size` are valid for writes and describe a c_int buffer, as
        // sysctlbyname requires; no new value is set (null, 0).
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                (&mut value as *mut libc::c_int).cast(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0).then_some(value as u32)
    }
    let first = u16::try_from(sysctl_u32(c"net.inet.ip.portrange.first")?).ok()?;
    let last = u16::try_from(sysctl_u32(c"net.inet.ip.portrange.last")?).ok()?;
    (first <= last).then_some(first..=last)
}

/// Windows hands out 49152-65535 unless an administrator changed it with
/// `netsh int ipv4 set dynamicport`; that setting has no documented query API in our crates.
#[cfg(not(target_os = "macos"))]
pub fn ephemeral_port_range() -> Option<RangeInclusive<u16>> {
    Some(49152..=65535)
}
