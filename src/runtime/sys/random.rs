//! Random numbers from the kernel (getrandom(2)), for DNS query ids
//! (RFC 5452 §9.2: ids an off-path attacker cannot guess).

/// Fill `buf` from getrandom(2); /dev/urandom when the kernel has no
/// getrandom (before Linux 3.17).
pub(crate) fn fill(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled part of buf.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOSYS) => {
                    use std::io::Read;
                    return std::fs::File::open("/dev/urandom")?.read_exact(&mut buf[done..]);
                }
                _ => return Err(e),
            }
        }
        done += n as usize;
    }
    Ok(())
}

/// A random 16-bit value (a DNS message id).
#[cfg(test)]
pub(crate) fn random_u16() -> std::io::Result<u16> {
    let mut b = [0u8; 2];
    fill(&mut b)?;
    Ok(u16::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| super::random_u16().unwrap()).collect();
        assert!(ids.len() > 48, "64 draws of 16 bits give few repeats: {}", ids.len());
    }
}
