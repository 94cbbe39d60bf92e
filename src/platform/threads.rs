//! Threads for many clients: detached, named, with small stacks, and on Linux light enough in
//! memory mappings that 20,000 of them fit in one process.

use std::io;
#[cfg(not(target_os = "linux"))]
use std::thread;

/// Starts `work` on a detached thread with a `stack`-byte stack.
#[cfg(not(target_os = "linux"))]
pub fn spawn_small<F: FnOnce() + Send + 'static>(
    name: &str,
    stack: usize,
    work: F,
) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(stack)
        .spawn(work)
        .map(drop)
}

/// Starts `work` on a detached thread with a `stack`-byte stack (and the usual guard page).
///
/// On Linux the thread is made with `pthread_create` itself: each of std's threads also gets a
/// signal stack with a guard page of its own, four memory mappings per thread in all, and the
/// 20,000 threads of 10,000 clients would pass the kernel's limit of 65,530 mappings per process
/// (`vm.max_map_count`), failing with "Cannot allocate memory". These threads take two. A stack
/// overflow on them still stops at the guard page (the process dies of SIGSEGV, not silently).
#[cfg(target_os = "linux")]
pub fn spawn_small<F: FnOnce() + Send + 'static>(
    name: &str,
    stack: usize,
    work: F,
) -> io::Result<()> {
    type Work = Box<dyn FnOnce() + Send>;
    extern "C" fn run(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` is the box leaked below, handed to exactly this one thread.
        let work = unsafe { Box::from_raw(arg.cast::<Work>()) };
        // A panic must not unwind into C; std's hook has reported it already.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        std::ptr::null_mut()
    }
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    };
    // Names show in /proc and in debuggers; the kernel keeps 15 bytes. The thread names itself:
    // a detached thread may be gone by the time pthread_create returns.
    let short = std::ffi::CString::new(&name.as_bytes()[..name.len().min(15)]).ok();
    let work: Box<Work> = Box::new(Box::new(move || {
        if let Some(short) = &short {
            // A thread without its name still works: nothing to do about a failure.
            let _ = rustix::thread::set_name(short);
        }
        work();
    }));
    let arg = Box::into_raw(work).cast::<libc::c_void>();
    // SAFETY: plain pthread calls on an attribute object initialised first and destroyed after;
    // on failure the box is taken back, as no thread got it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        check(libc::pthread_attr_init(&mut attr))?;
        let mut started = check(libc::pthread_attr_setstacksize(
            &mut attr,
            stack.max(libc::PTHREAD_STACK_MIN),
        ))
        .and_then(|()| {
            check(libc::pthread_attr_setdetachstate(
                &mut attr,
                libc::PTHREAD_CREATE_DETACHED,
            ))
        });
        let mut thread: libc::pthread_t = std::mem::zeroed();
        if started.is_ok() {
            started = check(libc::pthread_create(&mut thread, &attr, run, arg));
        }
        libc::pthread_attr_destroy(&mut attr);
        if let Err(err) = started {
            drop(Box::from_raw(arg.cast::<Work>()));
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    #[test]
    fn threads_carry_their_name_cut_to_the_kernels_fifteen_bytes() {
        let (tx, rx) = std::sync::mpsc::channel();
        super::spawn_small("soquete-a-long-name", 256 * 1024, move || {
            let _ = tx.send(std::fs::read_to_string("/proc/thread-self/comm"));
        })
        .unwrap();
        let comm = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(comm, "soquete-a-long-\n");
    }
}
