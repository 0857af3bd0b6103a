//! Every token against the scalar one (or the plain Rust definition), lane op by lane
//! op, on special values: the seam every kernel's "same bits on every level" rests on.
//! Each test runs its generic body through [`leveled`] on every available level, so it
//! exercises the real dispatch and target features.

use super::{F64x8, Fma, Lanes, Level, U32Lanes, available, leveled};

/// Specials and a spread of ordinary values (128: a multiple of 16, and enough for a
/// 16 x 16 square of row stride 6).
fn values() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -2.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1e-40,
        -1e-40,
        f32::MAX,
        f32::MIN,
        3.0e38,
        12_582_912.0,
    ];
    let mut x = 0x1234_5678u32;
    while v.len() < 128 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(f32::from_bits(x) % 1000.0);
    }
    v
}

/// Bits with every NaN mapped to one NaN (payloads are not part of the contract).
fn canon(x: f32) -> u32 {
    if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() }
}

fn levels() -> Vec<Level> {
    Level::ALL.into_iter().filter(|&l| available(l)).collect()
}

/// The token's `LANES`.
fn lanes_of(level: Level) -> usize {
    match level {
        Level::Scalar => 1,
        Level::Avx2 => 8,
        Level::Avx512 => 16,
    }
}

leveled!(
    /// [`lanes_ops`] on `level`.
    fn lanes_ops_at(a: &[f32], b: &[f32], out: &mut Vec<u32>) => lanes_ops
);

/// Every f32 lane op of [`Lanes`] on `(a[i], b[i])`, `LANES` at a time, results appended.
fn lanes_ops<S: Lanes>(s: S, a: &[f32], b: &[f32], out: &mut Vec<u32>) {
    for (x, y) in a.chunks_exact(S::LANES).zip(b.chunks_exact(S::LANES)) {
        let (x, y) = (s.load(x), s.load(y));
        let one = s.splat(1.0);
        let r = [
            s.add(x, y),
            s.sub(x, y),
            s.mul(x, y),
            s.div(x, y),
            s.min(x, y),
            s.max(x, y),
            s.select(s.lt(x, y), one, s.zero()),
            s.select(s.le(x, y), one, s.zero()),
            s.select(s.gt(x, y), one, s.zero()),
            s.select(s.eq(x, y), one, s.zero()),
            s.abs(x),
            s.or_sign(s.abs(x), y),
        ];
        for v in r {
            let mut buf = [0.0f32; 16];
            s.store(v, &mut buf[..S::LANES]);
            out.extend(buf[..S::LANES].iter().map(|&f| canon(f)));
        }
    }
}

#[test]
fn lane_ops_equal_the_scalar_token() {
    let a = values();
    let mut b = a.clone();
    b.rotate_left(7);
    let mut want = Vec::new();
    lanes_ops_at(Level::Scalar, &a, &b, &mut want);
    for level in levels() {
        let mut got = Vec::new();
        lanes_ops_at(level, &a, &b, &mut got);
        // The scalar results are [element][op]; the level's are [chunk][op][lane].
        let l = lanes_of(level);
        let mut regrouped = vec![0u32; want.len()];
        for (i, w) in want.chunks_exact(12).enumerate() {
            let (chunk, lane) = (i / l, i % l);
            for (op, &v) in w.iter().enumerate() {
                regrouped[chunk * 12 * l + op * l + lane] = v;
            }
        }
        assert_eq!(got, regrouped, "{level}");
    }
}

leveled!(
    /// [`partial_and_masks`] on `level`.
    fn partial_and_masks_at(out: &mut Vec<u32>) => partial_and_masks
);

/// `load_first` / `store_first` for every `n <= LANES` (sentinels past `n` untouched),
/// `mask_from_bits` + `select` for every bit pattern of a byte, and `pow2_halves`.
fn partial_and_masks<S: Lanes>(s: S, out: &mut Vec<u32>) {
    let src: Vec<f32> = (1..=16).map(|i| i as f32).collect();
    for n in 0..=S::LANES.min(15) {
        let mut dst = [-7.0f32; 16];
        // SAFETY: src and dst have 16 >= LANES elements.
        unsafe {
            let v = s.load_first(src.as_ptr(), n);
            s.store_first(dst.as_mut_ptr(), s.add(v, s.splat(100.0)), n);
        }
        out.extend(dst.iter().map(|f| f.to_bits()));
    }
    for bits in 0u32..256 {
        let mut dst = [0.0f32; 16];
        let v = s.select(s.mask_from_bits(bits), s.splat(1.0), s.splat(2.0));
        s.store(v, &mut dst[..S::LANES]);
        for (l, &d) in dst[..S::LANES].iter().enumerate() {
            let want = if bits >> l & 1 == 1 { 1.0 } else { 2.0 };
            assert_eq!(d, want, "bits {bits:#x} lane {l}");
        }
    }
    for n in -252i32..=254 {
        let (a, b) = s.pow2_halves(s.splat(n as f32 + super::ROUND_MAGIC));
        let mut buf = [0.0f32; 32];
        s.store(a, &mut buf[..S::LANES]);
        s.store(b, &mut buf[16..16 + S::LANES]);
        out.extend([buf[0].to_bits(), buf[16].to_bits()]);
    }
}

#[test]
fn partial_loads_stores_masks_and_pow2_equal_the_definition() {
    for level in levels() {
        let mut got = Vec::new();
        partial_and_masks_at(level, &mut got);
        let lanes = lanes_of(level);
        let (parts, pow2) = got.split_at(16 * (lanes.min(15) + 1));
        for (n, dst) in parts.chunks_exact(16).enumerate() {
            for (j, &d) in dst.iter().enumerate() {
                let want = if j < n { 101.0 + j as f32 } else { -7.0 };
                assert_eq!(f32::from_bits(d), want, "{level} n {n} lane {j}");
            }
        }
        for (n, ab) in (-252i32..=254).zip(pow2.chunks_exact(2)) {
            let (a, b) = (f32::from_bits(ab[0]), f32::from_bits(ab[1]));
            assert_eq!(f64::from(a) * f64::from(b), 2f64.powi(n), "{level} n {n}");
        }
    }
}

leveled!(
    /// [`u32_ops`] on `level`.
    fn u32_ops_at(words: &[u32], out: &mut Vec<u32>) => u32_ops
);

/// Every [`U32Lanes`] op on `words`, `LANES` at a time; `store_transposed` of 16 vectors.
fn u32_ops<S: U32Lanes>(s: S, words: &[u32], out: &mut Vec<u32>) {
    for (c, w) in words.chunks_exact(S::LANES).enumerate() {
        let x = s.load_u32(w);
        let y = s.splat_u32(w[0].rotate_left(c as u32));
        let r = [
            s.add_u32(x, y),
            s.xor_u32(x, y),
            s.rotl_u32::<16>(x),
            s.rotl_u32::<12>(x),
            s.rotl_u32::<8>(x),
            s.rotl_u32::<7>(x),
            s.rotl_u32::<3>(x),
        ];
        // Transpose vector j (one per op, padded with x) into lane-major blocks.
        let mut v = [x; 16];
        v[..7].copy_from_slice(&r);
        let mut t = vec![0u32; 16 * S::LANES];
        s.store_transposed(&v, &mut t);
        for l in 0..S::LANES {
            out.extend_from_slice(&t[16 * l..16 * l + 7]);
        }
        for thr in [0, 1, w[0], 0x7fff_ffff, 0x8000_0000, 0x8000_0001, u32::MAX] {
            out.push(s.lt_bits(w, thr));
        }
    }
}

#[test]
fn u32_ops_and_transpose_equal_the_definition() {
    let mut x = 0x9E37_79B9u32;
    let mut words: Vec<u32> = (0..64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect();
    words[..8].copy_from_slice(&[0, 1, 0x7fff_ffff, 0x8000_0000, 0x8000_0001, u32::MAX, 2, 3]);
    for level in levels() {
        let mut got = Vec::new();
        u32_ops_at(level, &words, &mut got);
        let lanes = lanes_of(level);
        let mut want = Vec::new();
        for (c, w) in words.chunks_exact(lanes).enumerate() {
            let y = w[0].rotate_left(c as u32);
            for &x in w {
                want.extend([
                    x.wrapping_add(y),
                    x ^ y,
                    x.rotate_left(16),
                    x.rotate_left(12),
                    x.rotate_left(8),
                    x.rotate_left(7),
                    x.rotate_left(3),
                ]);
            }
            for thr in [0, 1, w[0], 0x7fff_ffff, 0x8000_0000, 0x8000_0001, u32::MAX] {
                let bits = w.iter().enumerate().map(|(l, &x)| u32::from(x < thr) << l);
                want.push(bits.sum());
            }
        }
        assert_eq!(got, want, "{level}");
    }
}

leveled!(
    /// [`fma_ops`] on `level` (SIMD levels).
    vector unsafe fn fma_ops_at(a: &[f32], b: &[f32], out: &mut Vec<u32>) => fma_ops
);

/// Every [`Fma`] op: fma, broadcast, gather, masked loads and stores, zero tests,
/// compress (the token's and the trait's default) and the square transpose.
///
/// # Safety
/// None beyond the token's (the pointers below are derived from the slices in range).
unsafe fn fma_ops<S: Fma>(s: S, a: &[f32], b: &[f32], out: &mut Vec<u32>) {
    let l = S::LANES;
    let mut buf = [0.0f32; 16];
    let mut put = |v: S::V, out: &mut Vec<u32>| {
        s.store(v, &mut buf[..l]);
        out.extend(buf[..l].iter().map(|&f| canon(f)));
    };
    // SAFETY: every pointer below stays inside `a`, `b` or a local array (a and b have
    // 128 elements: 16 rows of stride 6 read a[..106]).
    unsafe {
        for c in 0..a.len() / l {
            let (x, y) = (s.load(&a[c * l..]), s.load(&b[c * l..]));
            put(s.fma(x, y, s.load(&b[(c * l + 5) % (a.len() - l)..])), out);
            put(s.broadcast(&a[c]), out);
            out.push(s.nonzero_mask(a[c * l..].as_ptr()));
            out.push(s.neg_zero_lanes(x));
        }
        put(s.gather(a.as_ptr().add(1), 6), out);
        for mask in [0u32, 1, 0x5555, 0x8001, (1 << l) - 1] {
            put(s.load_mask(a.as_ptr(), mask), out);
            let mut dst = [-7.0f32; 16];
            s.store_mask(dst.as_mut_ptr(), s.splat(3.0), mask);
            out.extend(dst.iter().map(|f| f.to_bits()));
        }
        for c in 0..a.len() / l {
            let (mut idx, mut val) = ([0u32; 16], [0.0f32; 16]);
            let p = a[c * l..].as_ptr();
            let n = s.compress_nonzero(p, 100, idx.as_mut_ptr(), val.as_mut_ptr());
            out.push(n as u32);
            out.extend_from_slice(&idx[..n]);
            out.extend(val[..n].iter().map(|&f| canon(f)));
        }
        let mut t = [0.0f32; 16 * 20];
        s.transpose_square(a.as_ptr(), 6, t.as_mut_ptr(), 20);
        out.extend(t.iter().map(|&f| canon(f)));
    }
}

#[test]
fn fma_ops_equal_the_definition() {
    let a = values();
    let mut b = a.clone();
    b.rotate_left(11);
    for level in levels().into_iter().filter(|&l| l != Level::Scalar) {
        let mut got = Vec::new();
        // SAFETY: fma_ops only dereferences pointers into its slices and locals.
        unsafe { fma_ops_at(level, &a, &b, &mut got) };
        let l = lanes_of(level);
        let mut want = Vec::new();
        for c in 0..a.len() / l {
            let z = &b[(c * l + 5) % (a.len() - l)..];
            want.extend((0..l).map(|j| canon(a[c * l + j].mul_add(b[c * l + j], z[j]))));
            want.extend((0..l).map(|_| canon(a[c])));
            let chunk = &a[c * l..c * l + l];
            want.push(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(j, &x)| u32::from(x != 0.0) << j)
                    .sum(),
            );
            let neg = |x: f32| x.to_bits() == 0x8000_0000;
            want.push(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(j, &x)| u32::from(neg(x)) << j)
                    .sum(),
            );
        }
        want.extend((0..l).map(|j| canon(a[1 + 6 * j])));
        for mask in [0u32, 1, 0x5555, 0x8001, (1 << l) - 1] {
            let on = |j: usize| mask >> j & 1 == 1;
            want.extend((0..l).map(|j| canon(if on(j) { a[j] } else { 0.0 })));
            want.extend((0..16).map(|j| if j < l && on(j) { 3.0f32 } else { -7.0 }.to_bits()));
        }
        for c in 0..a.len() / l {
            let nz: Vec<usize> = (0..l).filter(|&j| a[c * l + j] != 0.0).collect();
            want.push(nz.len() as u32);
            want.extend(nz.iter().map(|&j| 100 + j as u32));
            want.extend(nz.iter().map(|&j| canon(a[c * l + j])));
        }
        let mut t = [0.0f32; 16 * 20];
        for q in 0..l {
            for i in 0..l {
                t[q * 20 + i] = a[i * 6 + q];
            }
        }
        want.extend(t.iter().map(|&f| canon(f)));
        assert_eq!(got, want, "{level}");
    }
}

leveled!(
    /// [`f64x8_ops`] on `level`.
    fn f64x8_ops_at(a: &[f32], out: &mut Vec<u64>) => f64x8_ops
);

/// Every [`F64x8`] op on `a`, 8 at a time: widen, abs, mul, add (accumulated).
fn f64x8_ops<S: F64x8>(s: S, a: &[f32], out: &mut Vec<u64>) {
    let mut acc = s.zero_f64x8();
    for c in a.as_chunks::<8>().0 {
        let x = s.widen(c);
        acc = s.add_f64x8(acc, s.mul_f64x8(x, s.abs_f64x8(x)));
        for r in [x, s.abs_f64x8(x), s.mul_f64x8(x, x), acc] {
            out.extend(
                s.to_array(r)
                    .map(|v| if v.is_nan() { 1 } else { v.to_bits() }),
            );
        }
    }
}

#[test]
fn f64x8_ops_equal_the_definition() {
    let a = values();
    let mut want = Vec::new();
    let mut acc = [0.0f64; 8];
    let canon = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    for c in a.as_chunks::<8>().0 {
        let x = c.map(f64::from);
        for l in 0..8 {
            acc[l] += x[l] * x[l].abs();
        }
        want.extend(x.map(canon));
        want.extend(x.map(|v| canon(v.abs())));
        want.extend(x.map(|v| canon(v * v)));
        want.extend(acc.map(canon));
    }
    for level in levels() {
        let mut got = Vec::new();
        f64x8_ops_at(level, &a, &mut got);
        assert_eq!(got, want, "{level}");
    }
}
