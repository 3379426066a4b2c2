//! Files of this machine that a transfer streams: an upload from a local path, a download to
//! one. Natively a `tokio::fs::File` is held for the whole transfer. The WebAssembly build
//! cannot hold a descriptor across calls: every thread there is a WASI instance of its own
//! (napi-rs's loader gives each worker its own `node:wasi`, with its own descriptor table), so
//! a descriptor opened on one thread is `EBADF` on another, and Tokio runs each file operation
//! on whichever blocking thread is free and moves tasks between workers. There each chunk is
//! one blocking call that opens the file by path, reads or appends, and closes it again.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::io;
use std::path::Path;

pub(super) use imp::Writer;

/// Opens `path` for reading: its length now, and a stream of that many bytes in pieces of at
/// most `chunk` bytes.
pub(super) async fn read(
    path: &Path,
    chunk: usize,
) -> io::Result<(u64, BoxStream<'static, io::Result<Bytes>>)> {
    imp::read(path, chunk).await
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::{BoxStream, Bytes, Path};
    use futures_util::StreamExt;
    use std::io;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

    pub(super) async fn read(
        path: &Path,
        chunk: usize,
    ) -> io::Result<(u64, BoxStream<'static, io::Result<Bytes>>)> {
        let f = tokio::fs::File::open(path).await?;
        let len = f.metadata().await?.len();
        let body = tokio_util::io::ReaderStream::with_capacity(f.take(len), chunk);
        Ok((len, body.boxed()))
    }

    /// A file written from its start, buffered in pieces of `capacity` bytes.
    pub(in crate::toolbox) struct Writer(BufWriter<tokio::fs::File>);

    impl Writer {
        pub(in crate::toolbox) async fn create(path: &Path, capacity: usize) -> io::Result<Self> {
            let file = tokio::fs::File::create(path).await?;
            Ok(Writer(BufWriter::with_capacity(capacity, file)))
        }

        pub(in crate::toolbox) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
            self.0.write_all(data).await
        }

        /// Writes what is buffered and waits until the file is on disk.
        pub(in crate::toolbox) async fn finish(mut self) -> io::Result<()> {
            self.0.flush().await?;
            self.0.get_ref().sync_all().await
        }
    }
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::{BoxStream, Bytes, Path};
    use futures_util::StreamExt;
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read, Seek, SeekFrom, Write};
    use std::path::PathBuf;

    /// Runs `f` (which opens, uses and closes its file) on one blocking thread.
    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(io::Error::other)?
    }

    pub(super) async fn read(
        path: &Path,
        chunk: usize,
    ) -> io::Result<(u64, BoxStream<'static, io::Result<Bytes>>)> {
        let path = path.to_path_buf();
        let p = path.clone();
        let len = blocking(move || File::open(&p)?.metadata().map(|m| m.len())).await?;
        let body = futures_util::stream::try_unfold(0u64, move |offset| {
            let path = path.clone();
            async move {
                if offset >= len {
                    return Ok(None);
                }
                let n = usize::try_from(len - offset).map_or(chunk, |left| left.min(chunk));
                let piece = blocking(move || {
                    let mut f = File::open(&path)?;
                    f.seek(SeekFrom::Start(offset))?;
                    let mut piece = vec![0; n];
                    f.read_exact(&mut piece)?;
                    Ok(piece)
                })
                .await?;
                Ok(Some((Bytes::from(piece), offset + n as u64)))
            }
        });
        Ok((len, body.boxed()))
    }

    /// A file written from its start: `capacity` bytes are gathered, then appended by one
    /// blocking call that opens and closes the file.
    pub(in crate::toolbox) struct Writer {
        path: PathBuf,
        capacity: usize,
        buffer: Vec<u8>,
    }

    impl Writer {
        pub(in crate::toolbox) async fn create(path: &Path, capacity: usize) -> io::Result<Self> {
            let p = path.to_path_buf();
            blocking(move || File::create(&p).map(drop)).await?;
            Ok(Writer {
                path: path.to_path_buf(),
                capacity,
                buffer: Vec::with_capacity(capacity),
            })
        }

        pub(in crate::toolbox) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
            self.buffer.extend_from_slice(data);
            if self.buffer.len() >= self.capacity {
                self.flush().await?;
            }
            Ok(())
        }

        async fn flush(&mut self) -> io::Result<()> {
            let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.capacity));
            let path = self.path.clone();
            blocking(move || {
                OpenOptions::new()
                    .append(true)
                    .open(&path)?
                    .write_all(&data)
            })
            .await
        }

        /// Writes what is buffered and waits until the file is on disk.
        pub(in crate::toolbox) async fn finish(mut self) -> io::Result<()> {
            self.flush().await?;
            let path = self.path;
            blocking(move || OpenOptions::new().write(true).open(&path)?.sync_all()).await
        }
    }
}
