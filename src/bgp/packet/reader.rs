//! Bounds-checked cursor over received bytes.
//!
//! Every read from the wire goes through this type so that a short or lying length field
//! yields `None` instead of a panic; callers turn `None` into the NOTIFICATION that fits
//! the place where the bytes ran out.

pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// What is left, without consuming it (to quote a whole attribute in a NOTIFICATION).
    pub(super) fn peek_rest(&self) -> &'a [u8] {
        self.buf
    }

    /// The next `n` bytes, or `None` (and nothing consumed) if fewer remain.
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.buf.get(..n)?;
        self.buf = self.buf.get(n..)?;
        Some(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let [b] = self.array()?;
        Some(b)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// Everything not consumed yet.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}
