//! The system calls of a read plan driven over a socket in one call
//! (`PlanExchange.run_on`): non-blocking `send` and `recv` on a connected
//! socket's descriptor, and `poll` on it alone with the GIL released.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use pyo3::prelude::*;

#[cfg(target_os = "linux")]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_FLAGS: libc::c_int = 0;

/// Sends all of `data` at once; a send the kernel takes only part of (a full
/// buffer: never on a live link between requests) is an error.
pub(crate) fn send_now(py: Python<'_>, fd: RawFd, data: &[u8]) -> PyResult<()> {
    loop {
        // SAFETY: `data` is valid for `data.len()` bytes; the descriptor is the
        // caller's open socket (a closed one fails with EBADF).
        let sent = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), SEND_FLAGS) };
        if sent >= 0 {
            if sent.unsigned_abs() == data.len() {
                return Ok(());
            }
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "send buffer full").into());
        }
        interrupted(py)?;
    }
}

/// What one non-blocking `recv` found.
pub(crate) enum Received {
    /// This many bytes, at the start of the buffer.
    Bytes(usize),
    /// Nothing yet.
    Nothing,
    /// The peer closed the connection.
    End,
}

/// Reads what the socket holds into `buf`, without waiting.
pub(crate) fn recv_now(py: Python<'_>, fd: RawFd, buf: &mut [u8]) -> PyResult<Received> {
    loop {
        // SAFETY: `buf` is valid and writable for `buf.len()` bytes.
        let got = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if got > 0 {
            return Ok(Received::Bytes(got.unsigned_abs()));
        }
        if got == 0 {
            return Ok(Received::End);
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            return Ok(Received::Nothing);
        }
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error.into());
        }
        py.check_signals()?;
    }
}

/// Waits up to `timeout_ms` for `fd` to be readable (or closed, or failed),
/// with the GIL released; false when the time ran out. A signal ends the wait
/// early (its Python handler runs; an exception it raises is returned).
pub(crate) fn poll_readable(py: Python<'_>, fd: RawFd, timeout_ms: i32) -> PyResult<bool> {
    Ok(poll_events(py, fd, timeout_ms)? != 0)
}

/// `poll_readable`'s events (`POLLIN`, `POLLHUP`, `POLLERR`, `POLLNVAL` for a
/// closed descriptor), 0 when the time ran out or a signal ended the wait.
pub(crate) fn poll_events(py: Python<'_>, fd: RawFd, timeout_ms: i32) -> PyResult<i16> {
    let mut entry = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ready = py.detach(|| {
        // SAFETY: one valid `pollfd`, its count 1.
        unsafe { libc::poll(&mut entry, 1, timeout_ms) }
    });
    if ready > 0 {
        return Ok(entry.revents);
    }
    if ready < 0 {
        interrupted(py)?;
    }
    Ok(0)
}

/// After a failed call: Ok for an interrupted one (once the signal handlers
/// ran), else the error.
fn interrupted(py: Python<'_>) -> PyResult<()> {
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::Interrupted {
        return py.check_signals();
    }
    Err(error.into())
}

/// A new `epoll` set (closed on exec).
pub(crate) fn epoll_new() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; a descriptor returned is ours alone.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `fd` to the `epoll` set, edge-triggered (each arrival of data reports
/// once; a report's reader takes all the socket holds, and with `EPOLLRDHUP`
/// set, the peer's end of file that came with it), told by `key`.
pub(crate) fn epoll_add(epoll: &OwnedFd, fd: RawFd, key: u64) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: key,
    };
    // SAFETY: one valid `epoll_event`; the descriptors are checked by the kernel.
    if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The keys of the descriptors of the `epoll` set that are ready now (no wait),
/// into `ready` (at most its capacity).
pub(crate) fn epoll_ready(epoll: &OwnedFd, ready: &mut Vec<libc::epoll_event>) -> io::Result<()> {
    ready.clear();
    let room = i32::try_from(ready.capacity()).unwrap_or(i32::MAX);
    // SAFETY: `ready` has room for `room` events; the kernel writes at most that many.
    let count = unsafe { libc::epoll_wait(epoll.as_raw_fd(), ready.as_mut_ptr(), room, 0) };
    if count < 0 {
        let error = io::Error::last_os_error();
        return if error.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(error)
        };
    }
    // SAFETY: the kernel initialised the first `count` events.
    unsafe { ready.set_len(count.unsigned_abs() as usize) };
    Ok(())
}
