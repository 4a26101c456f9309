//! Reading IDX files, the format MNIST and Fashion-MNIST ship in.
//!
//! An IDX file is a 4-byte magic number `00 00 TT DD` (two zero bytes, a type code `TT`,
//! the number of dimensions `DD`), then `DD` big-endian `u32` dimension sizes, then the
//! payload in row-major order. Only type `0x08` (unsigned byte) is supported, which is
//! what image and label files use. Files may be raw or gzipped (`.gz`, or detected by the
//! gzip magic `1f 8b`).
//!
//! ```no_run
//! use std::path::Path;
//! use bitlogic::io::idx::{load_idx_dir, read_idx, Split};
//!
//! // MNIST test split: 10000 samples of 784 pixel values in 0..=255, 10 classes.
//! let test = load_idx_dir(Path::new("data/mnist"), Split::Test)?;
//! assert_eq!((test.n, test.features, test.classes), (10000, 784, 10));
//!
//! // One raw array: dims [10000, 28, 28], data.len() == 10000 * 28 * 28.
//! let images = read_idx(Path::new("data/mnist/t10k-images-idx3-ubyte.gz"))?;
//! assert_eq!(images.dims, vec![10000, 28, 28]);
//! # Ok::<(), bitlogic::Error>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::io::Dataset;
use crate::{Error, Result};

/// An IDX array of unsigned bytes: `data` holds the product of `dims` values, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Which half of an MNIST-layout directory to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// (images, labels) file names without the `.gz` suffix.
    fn file_names(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }
}

const TYPE_UBYTE: u8 = 0x08;
const MAX_DIMS: usize = 4;

/// Reads one IDX file of unsigned bytes, raw or gzipped.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let has_gz_ext = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = if has_gz_ext || raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("not a valid gzip stream: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(path, &bytes)
}

fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray> {
    let Some(&[z0, z1, ty, ndims]) = bytes.get(..4) else {
        return Err(Error::format(
            path,
            format!(
                "file is {} bytes long, too short for the 4-byte IDX magic number",
                bytes.len()
            ),
        ));
    };
    if z0 != 0 || z1 != 0 {
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: magic number starts with {z0:#04x} {z1:#04x}, expected 0x00 0x00"
            ),
        ));
    }
    if ty != TYPE_UBYTE {
        return Err(Error::format(
            path,
            format!(
                "IDX type code {ty:#04x} is not supported; only 0x08 (unsigned byte) is supported"
            ),
        ));
    }
    let ndims = usize::from(ndims);
    if !(1..=MAX_DIMS).contains(&ndims) {
        return Err(Error::format(
            path,
            format!("IDX file has {ndims} dimensions; expected 1 to {MAX_DIMS}"),
        ));
    }
    let header_len = 4 + 4 * ndims;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(Error::format(
            path,
            format!(
                "file is {} bytes long, too short for the header of {ndims} dimensions ({header_len} bytes)",
                bytes.len()
            ),
        ));
    };
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    // A corrupt header can claim more bytes than any machine could address.
    let Some(expected) = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        return Err(Error::format(
            path,
            format!(
                "IDX dimensions {dims:?} overflow: their product exceeds {}",
                usize::MAX
            ),
        ));
    };
    let found = bytes.len() - header_len;
    if found != expected {
        let what = if found < expected {
            "file is truncated"
        } else {
            "file has trailing bytes"
        };
        return Err(Error::format(
            path,
            format!("{what}: dims {dims:?} expected {expected} bytes of data, found {found}"),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Loads an images file (`[n, h, w]` or `[n, features]`) and a labels file (`[n]`) into a
/// data set. Pixel values stay in 0..=255; `classes` is the largest label + 1, at least 2.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<Dataset> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    if img.dims.len() < 2 {
        return Err(Error::format(
            images,
            format!(
                "an images file needs 2 to 4 dimensions ([n, h, w] or [n, features]), found dims {:?}",
                img.dims
            ),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(Error::format(
            labels,
            format!(
                "a labels file needs exactly 1 dimension ([n]), found dims {:?}",
                lab.dims
            ),
        ));
    }
    let n = img.dims[0];
    if n != lab.dims[0] {
        return Err(Error::format(
            images,
            format!(
                "holds {n} images but {} holds {} labels; the counts must match",
                labels.display(),
                lab.dims[0]
            ),
        ));
    }
    if n == 0 {
        return Err(Error::format(images, "holds no samples (n = 0)"));
    }
    // Cannot overflow: read_idx checked the product of all dims.
    let features: usize = img.dims[1..].iter().product();
    if features == 0 {
        return Err(Error::format(
            images,
            format!("images have no features: dims {:?}", img.dims),
        ));
    }
    let max_label = lab.data.iter().copied().max().unwrap_or(0);
    Ok(Dataset {
        n,
        features,
        classes: (usize::from(max_label) + 1).max(2),
        x: img.data.iter().map(|&b| f32::from(b)).collect(),
        y: lab.data.iter().map(|&b| u32::from(b)).collect(),
        image_shape: (img.dims.len() == 3).then(|| (img.dims[1], img.dims[2])),
    })
}

/// Loads one split of a directory in the MNIST layout (also used by Fashion-MNIST):
/// `train-images-idx3-ubyte` + `train-labels-idx1-ubyte`, or `t10k-images-idx3-ubyte` +
/// `t10k-labels-idx1-ubyte`, each raw or with a `.gz` suffix.
pub fn load_idx_dir(dir: &Path, split: Split) -> Result<Dataset> {
    let (images, labels) = split.file_names();
    load_idx_pair(&find_file(dir, images)?, &find_file(dir, labels)?)
}

/// `dir/name`, or else `dir/name.gz`. The raw file wins when both exist: it is faster to read.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz_name = format!("{name}.gz");
    [dir.join(name), dir.join(&gz_name)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid(format!(
                "{}: no {name} or {gz_name} in this directory (expected the MNIST layout: \
                 train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, \
                 t10k-labels-idx1-ubyte, each raw or gzipped)",
                dir.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A fresh directory per test, so tests running in parallel never share files.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bitlogic-idx-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn idx_bytes(ty: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, ty, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn err_text(r: Result<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    /// 3 images of 2x2 pixels.
    const PIXELS: [u8; 12] = [0, 1, 2, 3, 10, 20, 30, 40, 255, 254, 253, 252];

    #[test]
    fn reads_raw_and_gzipped() {
        let dir = temp_dir("raw-gz");
        let bytes = idx_bytes(0x08, &[3, 2, 2], &PIXELS);
        let raw = read_idx(&write(&dir, "img", &bytes)).unwrap();
        assert_eq!(raw.dims, vec![3, 2, 2]);
        assert_eq!(raw.data, PIXELS);
        let gz = read_idx(&write(&dir, "img.gz", &gzip(&bytes))).unwrap();
        assert_eq!(gz, raw);
        // Gzip magic is enough, no extension needed.
        let sniffed = read_idx(&write(&dir, "img-no-ext", &gzip(&bytes))).unwrap();
        assert_eq!(sniffed, raw);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_truncated_and_trailing() {
        let dir = temp_dir("length");
        let short = idx_bytes(0x08, &[3, 2, 2], &PIXELS[..11]);
        let e = err_text(read_idx(&write(&dir, "short-img", &short)));
        assert!(e.contains("short-img") && e.contains("truncated"), "{e}");
        assert!(e.contains("expected 12 bytes of data, found 11"), "{e}");

        let mut long = idx_bytes(0x08, &[3, 2, 2], &PIXELS);
        long.extend_from_slice(&[9, 9]);
        let e = err_text(read_idx(&write(&dir, "long-img.gz", &gzip(&long))));
        assert!(e.contains("long-img.gz") && e.contains("trailing"), "{e}");
        assert!(e.contains("expected 12 bytes of data, found 14"), "{e}");

        let e = err_text(read_idx(&write(&dir, "tiny", &[0, 0])));
        assert!(e.contains("tiny") && e.contains("too short"), "{e}");
        let e = err_text(read_idx(&write(&dir, "cut-header", &[0, 0, 8, 3, 0, 0])));
        assert!(e.contains("cut-header") && e.contains("too short"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_bad_headers() {
        let dir = temp_dir("header");
        let mut bad_magic = idx_bytes(0x08, &[3, 2, 2], &PIXELS);
        bad_magic[0] = 0x50;
        let e = err_text(read_idx(&write(&dir, "magic", &bad_magic)));
        assert!(e.contains("magic") && e.contains("not an IDX file"), "{e}");

        // 0x0D is float; the message must name it and the one supported code.
        let e = err_text(read_idx(&write(
            &dir,
            "floats",
            &idx_bytes(0x0D, &[1], &[0; 4]),
        )));
        assert!(
            e.contains("floats") && e.contains("0x0d") && e.contains("0x08"),
            "{e}"
        );

        let e = err_text(read_idx(&write(&dir, "zero-dims", &[0, 0, 8, 0])));
        assert!(e.contains("zero-dims") && e.contains("0 dimensions"), "{e}");
        let e = err_text(read_idx(&write(
            &dir,
            "five-dims",
            &idx_bytes(8, &[1; 5], &[0]),
        )));
        assert!(e.contains("five-dims") && e.contains("5 dimensions"), "{e}");

        // 2^32-1 four times overflows even a 64-bit usize.
        let huge = idx_bytes(0x08, &[u32::MAX; 4], &[]);
        let e = err_text(read_idx(&write(&dir, "huge", &huge)));
        assert!(e.contains("huge") && e.contains("overflow"), "{e}");

        let e = err_text(read_idx(&write(&dir, "fake.gz", &idx_bytes(8, &[1], &[0]))));
        assert!(e.contains("fake.gz") && e.contains("gzip"), "{e}");

        let e = err_text(read_idx(&dir.join("missing")));
        assert!(e.contains("missing"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pairs_images_with_labels() {
        let dir = temp_dir("pair");
        let img = write(&dir, "img", &idx_bytes(8, &[3, 2, 2], &PIXELS));
        let lab = write(&dir, "lab", &idx_bytes(8, &[3], &[0, 0, 0]));
        let ds = load_idx_pair(&img, &lab).unwrap();
        assert_eq!((ds.n, ds.features, ds.classes), (3, 4, 2));
        assert_eq!(ds.sample(2), &[255.0, 254.0, 253.0, 252.0]);
        assert_eq!(ds.y, vec![0, 0, 0]);

        let lab5 = write(&dir, "lab5", &idx_bytes(8, &[3], &[5, 0, 1]));
        assert_eq!(load_idx_pair(&img, &lab5).unwrap().classes, 6);

        let flat = write(&dir, "flat", &idx_bytes(8, &[3, 4], &PIXELS));
        assert_eq!(load_idx_pair(&flat, &lab).unwrap().x, ds.x);

        let lab2 = write(&dir, "lab-two", &idx_bytes(8, &[2], &[1, 2]));
        let e = err_text(load_idx_pair(&img, &lab2));
        assert!(e.contains("img") && e.contains("lab-two"), "{e}");
        assert!(e.contains("3 images") && e.contains("2 labels"), "{e}");

        let e = err_text(load_idx_pair(&lab, &lab));
        assert!(e.contains("2 to 4 dimensions"), "{e}");
        let e = err_text(load_idx_pair(&img, &img));
        assert!(e.contains("exactly 1 dimension"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn directory_layout() {
        let dir = temp_dir("layout");
        write(
            &dir,
            "t10k-images-idx3-ubyte.gz",
            &gzip(&idx_bytes(8, &[3, 2, 2], &PIXELS)),
        );
        write(
            &dir,
            "t10k-labels-idx1-ubyte",
            &idx_bytes(8, &[3], &[1, 2, 3]),
        );
        let ds = load_idx_dir(&dir, Split::Test).unwrap();
        assert_eq!((ds.n, ds.features, ds.classes), (3, 4, 4));
        let e = err_text(load_idx_dir(&dir, Split::Train));
        assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");
        assert!(e.contains(&dir.display().to_string()), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shipped_mnist_test_split() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"));
        let ds = load_idx_dir(dir, Split::Test).unwrap();
        assert_eq!((ds.n, ds.features, ds.classes), (10000, 784, 10));
        assert_eq!(ds.x.len(), 10000 * 784);
        assert_eq!(ds.y[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let mut counts = [0usize; 10];
        for &y in &ds.y {
            counts[y as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<usize>(), 10000);
        assert_eq!(counts[1], 1135);
        assert!(ds.x.iter().all(|&v| (0.0..=255.0).contains(&v)));
    }
}
