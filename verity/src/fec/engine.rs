//! The encoding engine: opened inputs, batches of rounds spread over
//! worker threads, parity written or compared.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use super::{FecArea, FecError, FecLayout, FecParams, fec_start, layout, rsn, same_device};
use crate::rs;

/// Input bytes one worker reads per batch of rounds: large enough for long
/// sequential reads, small enough to bound memory (one batch per thread).
const BATCH_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Write the parity.
    Write,
    /// Compare it with the stored parity.
    Check,
}

/// One input area, opened, with where it starts in the concatenation.
#[derive(Debug)]
struct Input {
    file: File,
    path: PathBuf,
    offset: u64,
    len: u64,
    start: u64,
}

/// An encoding run: the opened inputs and FEC device and the geometry.
#[derive(Debug)]
pub(super) struct Job {
    inputs: Vec<Input>,
    pub(super) fec: File,
    fec_path: PathBuf,
    fec_offset: u64,
    mode: Mode,
    pub(super) layout: FecLayout,
    encoder: rs::Encoder,
    block_size: usize,
    rsn: usize,
    rounds: u64,
    /// Rounds per batch.
    batch: u64,
}

impl Job {
    pub(super) fn open(
        areas: &[FecArea<'_>],
        params: &FecParams,
        fec: &Path,
        fec_offset: u64,
        mode: Mode,
    ) -> Result<Job, FecError> {
        let layout = layout(areas, params)?;
        fec_start(fec_offset, params.block_size)?;
        let fec_end = fec_offset
            .checked_add(layout.parity_bytes)
            .ok_or(FecError::TooLarge {
                blocks: layout.blocks,
            })?;

        let mut inputs = Vec::with_capacity(areas.len());
        let mut start = 0;
        for area in areas {
            if same_device(area.path, fec)?
                && fec_offset < area.offset + area.len
                && area.offset < fec_end
            {
                return Err(FecError::Overlap {
                    path: fec.to_owned(),
                    fec_offset,
                    fec_end,
                    area_offset: area.offset,
                    area_end: area.offset + area.len,
                });
            }
            let mut file = File::open(area.path).map_err(|source| FecError::Open {
                path: area.path.to_owned(),
                source,
            })?;
            let size = file
                .seek(SeekFrom::End(0))
                .map_err(|source| FecError::Stat {
                    path: area.path.to_owned(),
                    source,
                })?;
            let end = area.offset + area.len;
            if size < end {
                return Err(FecError::AreaPastEnd {
                    path: area.path.to_owned(),
                    end,
                    size,
                });
            }
            inputs.push(Input {
                file,
                path: area.path.to_owned(),
                offset: area.offset,
                len: area.len,
                start,
            });
            start += area.len;
        }

        let fec_file = match mode {
            Mode::Write => OpenOptions::new()
                .write(true)
                .create(true)
                // Never truncate: the FEC device may be the hash device.
                .truncate(false)
                .mode(0o600)
                .open(fec),
            Mode::Check => File::open(fec),
        }
        .map_err(|source| FecError::Open {
            path: fec.to_owned(),
            source,
        })?;

        let bs = u64::from(params.block_size);
        let rsn = rsn(params.roots);
        let rounds = layout.blocks.div_ceil(rsn);
        let batch = (BATCH_BYTES / (rsn * bs)).clamp(1, rounds.max(1));
        // Both fit in usize: the block size is at most 512 KiB, rsn < 255.
        let block_size = usize::try_from(bs).map_err(|_| FecError::BlockSize {
            block_size: params.block_size,
        })?;
        Ok(Job {
            inputs,
            fec: fec_file,
            fec_path: fec.to_owned(),
            fec_offset,
            mode,
            layout,
            encoder: rs::Encoder::new(usize::from(params.roots)),
            block_size,
            rsn: rs::CODEWORD_LEN - usize::from(params.roots),
            rounds,
            batch,
        })
    }

    /// Runs the batches on all cores; returns the first error, or in check
    /// mode the lowest mismatching parity offset.
    pub(super) fn run(&self) -> Result<(), FecError> {
        let batches = self.rounds.div_ceil(self.batch);
        let threads = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(usize::try_from(batches).unwrap_or(usize::MAX))
            .max(1);
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let mismatch = AtomicU64::new(u64::MAX);
        let (results, spawn_error) = thread::scope(|scope| {
            let mut handles = Vec::with_capacity(threads);
            let mut spawn_error = None;
            for _ in 0..threads {
                let worker = || {
                    let result = self.work(&next, &stop, &mismatch);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                };
                match thread::Builder::new()
                    .name("liftoff-fec".into())
                    .spawn_scoped(scope, worker)
                {
                    Ok(h) => handles.push(h),
                    Err(source) => {
                        stop.store(true, Ordering::Relaxed);
                        spawn_error = Some(FecError::Spawn { source });
                        break;
                    }
                }
            }
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            (results, spawn_error)
        });
        if let Some(e) = spawn_error {
            return Err(e);
        }
        results.into_iter().collect::<Result<(), FecError>>()?;
        match mismatch.into_inner() {
            u64::MAX => Ok(()),
            offset => Err(FecError::Mismatch {
                path: self.fec_path.clone(),
                offset,
            }),
        }
    }

    /// One worker: takes batches of rounds until none are left.
    fn work(
        &self,
        next: &AtomicU64,
        stop: &AtomicBool,
        mismatch: &AtomicU64,
    ) -> Result<(), FecError> {
        let bs = self.block_size;
        let roots = self.encoder.roots();
        let batch = usize::try_from(self.batch).unwrap_or(1);
        let mut input = vec![0u8; self.rsn * batch * bs];
        let mut parity = vec![0u8; batch * bs * roots];
        let mut stored = Vec::new();
        let round_parity = (bs * roots) as u64;
        loop {
            let first = next.fetch_add(1, Ordering::Relaxed) * self.batch;
            if first >= self.rounds || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let parity_offset = self.fec_offset + first * round_parity;
            if self.mode == Mode::Check && parity_offset > mismatch.load(Ordering::Relaxed) {
                // An earlier mismatch is already known; only it is reported.
                continue;
            }
            let count = usize::try_from((self.rounds - first).min(self.batch)).unwrap_or(batch);
            let stride = batch * bs;
            // Column i of rounds first..first + count: the blocks
            // i·rounds + first …, contiguous in the concatenated input.
            for i in 0..self.rsn {
                let logical = (i as u64 * self.rounds + first) * bs as u64;
                let column = &mut input[i * stride..][..count * bs];
                self.read_input(logical, column)?;
            }
            for k in 0..count {
                let out = &mut parity[k * bs * roots..][..bs * roots];
                self.encoder
                    .encode_columns(&input[k * bs..], stride, bs, out);
            }
            let out = &parity[..count * bs * roots];
            match self.mode {
                Mode::Write => self
                    .fec
                    .write_all_at(out, parity_offset)
                    .map_err(|source| FecError::Write {
                        path: self.fec_path.clone(),
                        offset: parity_offset,
                        source,
                    })?,
                Mode::Check => {
                    stored.resize(out.len(), 0);
                    self.fec
                        .read_exact_at(&mut stored, parity_offset)
                        .map_err(|source| FecError::Read {
                            path: self.fec_path.clone(),
                            offset: parity_offset,
                            source,
                        })?;
                    if let Some(at) = out.iter().zip(&stored).position(|(a, b)| a != b) {
                        mismatch.fetch_min(parity_offset + at as u64, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Reads `buf.len()` bytes at `logical` of the concatenated inputs;
    /// bytes past the end read as zeros, as in veritysetup.
    fn read_input(&self, mut logical: u64, mut buf: &mut [u8]) -> Result<(), FecError> {
        while !buf.is_empty() {
            let Some(input) = self
                .inputs
                .iter()
                .find(|i| logical >= i.start && logical < i.start + i.len)
            else {
                buf.fill(0);
                return Ok(());
            };
            let within = logical - input.start;
            let n =
                usize::try_from(input.len - within).map_or(buf.len(), |left| left.min(buf.len()));
            let (now, rest) = buf.split_at_mut(n);
            let offset = input.offset + within;
            input
                .file
                .read_exact_at(now, offset)
                .map_err(|source| FecError::Read {
                    path: input.path.clone(),
                    offset,
                    source,
                })?;
            logical += n as u64;
            buf = rest;
        }
        Ok(())
    }
}
