//! Runtime choice of the instruction set for the layer kernels.
//!
//! Kernels are written once as `#[inline(always)]` Rust over fixed-size lane arrays; the
//! [`dispatch!`] macro instantiates each inside `target_feature` functions for AVX-512 and
//! AVX2+FMA and a plain one, and picks one at run time. `BITLOGIC_SIMD=scalar|avx2|avx512`
//! caps the level (for tests and benchmarks).

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Scalar,
    Avx2,
    Avx512,
}

impl SimdLevel {
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }
}

fn detect() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("fma")
        {
            return SimdLevel::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Scalar
}

/// The level the kernels use: the best the CPU has, capped by `BITLOGIC_SIMD`.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detected_level();
        let cap = match std::env::var("BITLOGIC_SIMD").as_deref() {
            Ok("scalar") => SimdLevel::Scalar,
            Ok("avx2") => SimdLevel::Avx2,
            _ => SimdLevel::Avx512,
        };
        best.min(cap)
    })
}

/// The best level this CPU has, ignoring `BITLOGIC_SIMD`.
pub fn detected_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

/// Defines `pub fn NAME(args)`, which runs `BODY::<L: Lanes>(args)` compiled for [`simd_level`], and
/// `pub fn AT(level, args)`, which forces a level (capped at what the CPU has; tests compare
/// levels with it).
macro_rules! dispatch {
    ($(#[$m:meta])* pub fn $name:ident / $at:ident ($($a:ident: $t:ty),*) => $body:ident;) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name($($a: $t),*) {
            $at($crate::layer::simd::simd_level(), $($a),*)
        }

        #[allow(clippy::too_many_arguments)]
        pub fn $at(level: $crate::layer::simd::SimdLevel, $($a: $t),*) {
            use $crate::layer::simd::{detected_level, SimdLevel};
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512($($a: $t),*) {
                    $body::<$crate::layer::lanes::Avx512>($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) {
                    $body::<$crate::layer::lanes::Avx2>($($a),*)
                }
                match level.min(detected_level()) {
                    // SAFETY: the CPU reported these features (detected_level caps the request).
                    SimdLevel::Avx512 => return unsafe { avx512($($a),*) },
                    SimdLevel::Avx2 => return unsafe { avx2($($a),*) },
                    SimdLevel::Scalar => {}
                }
            }
            let _ = level;
            $body::<$crate::layer::lanes::Scalar>($($a),*)
        }
    };
}
pub(crate) use dispatch;
