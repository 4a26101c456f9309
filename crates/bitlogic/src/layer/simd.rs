//! Runtime choice of the instruction set for the layer kernels.
//!
//! Kernels are written once as `#[inline(always)]` Rust over fixed-size lane arrays; the
//! [`dispatch!`] macro instantiates each inside `target_feature` functions for AVX-512 and
//! AVX2+FMA+F16C and a plain one, and picks one at run time. `BITLOGIC_SIMD=scalar|avx2|avx512`
//! caps the level (for tests and benchmarks). A kernel may also be generic over the storage
//! type of its activation rows (`act::Act`): `pub fn name<A: Act> / name_at (…)` then
//! instantiates `BODY::<L, A>` for each level, so f32, bf16 and f16 share one source.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Serialised as its [`name`](SimdLevel::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
        // F16C is in both lists for the f16 activation conversions (every AVX-512 CPU has it).
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            return SimdLevel::Avx512;
        }
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
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

/// Whether AVX-512 kernels store bf16 rows with the AVX512-BF16 conversion instruction: the
/// CPU has it and `BITLOGIC_SIMD` is unset (every level it names, `avx512` included, means
/// the integer rounding, so `BITLOGIC_SIMD=avx512` compares the two).
pub fn bf16_instructions() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            detected_level() == SimdLevel::Avx512
                && std::env::var("BITLOGIC_SIMD").is_err()
                && is_x86_feature_detected!("avx512bf16")
                && is_x86_feature_detected!("avx512bw")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// Defines `fn NAME(args)`, with the visibility given, which runs `BODY::<L: Lanes>(args)`
/// compiled for [`simd_level`], and `fn AT(level, args)`, which forces a level (capped at
/// what the CPU has; tests compare levels with it). With `fn NAME<A: Act> / AT (args)` both
/// are generic over the storage type `A` and run `BODY::<L, A>(args)`; at the AVX-512
/// level, bf16 rows use the `Avx512Bf16` lanes where [`bf16_instructions`] says so.
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident / $at:ident ($($a:ident: $t:ty),*) => $body:ident;) => {
        $crate::layer::simd::dispatch! {
            @emit [$(#[$m])*] [$vis] $name $at [] [] ($($a: $t),*) $body
        }
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident<$g:ident: $bound:path> / $at:ident ($($a:ident: $t:ty),*) => $body:ident;) => {
        $crate::layer::simd::dispatch! {
            @emit [$(#[$m])*] [$vis] $name $at [<$g: $bound>] [$g] ($($a: $t),*) $body
        }
    };
    (@emit [$(#[$m:meta])*] [$vis:vis] $name:ident $at:ident [$($gen:tt)*] [$($g:ident)?] ($($a:ident: $t:ty),*) $body:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments, dead_code)]
        $vis fn $name $($gen)* ($($a: $t),*) {
            $at $(::<$g>)? ($crate::layer::simd::simd_level(), $($a),*)
        }

        #[allow(clippy::too_many_arguments)]
        $vis fn $at $($gen)* (level: $crate::layer::simd::SimdLevel, $($a: $t),*) {
            use $crate::layer::simd::{detected_level, SimdLevel};
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma,f16c")]
                unsafe fn avx512 $($gen)* ($($a: $t),*) {
                    $body::<$crate::layer::lanes::Avx512 $(, $g)?>($($a),*)
                }
                #[target_feature(enable = "avx2,fma,f16c")]
                unsafe fn avx2 $($gen)* ($($a: $t),*) {
                    $body::<$crate::layer::lanes::Avx2 $(, $g)?>($($a),*)
                }
                $crate::layer::simd::dispatch!(@bf16 [$($gen)*] [$($g)?] ($($a: $t),*) $body);
                match level.min(detected_level()) {
                    // SAFETY: the CPU reported these features (detected_level caps the request;
                    // `@avx512` checks AVX512-BF16 before using it).
                    SimdLevel::Avx512 => return $crate::layer::simd::dispatch!(@avx512 [$($g)?] ($($a),*)),
                    SimdLevel::Avx2 => return unsafe { avx2 $(::<$g>)? ($($a),*) },
                    SimdLevel::Scalar => {}
                }
            }
            let _ = level;
            $body::<$crate::layer::lanes::Scalar $(, $g)?>($($a),*)
        }
    };
    // Generic kernels get a third x86 instance, for bf16 rows on CPUs with AVX512-BF16.
    (@bf16 [] [] ($($a:ident: $t:ty),*) $body:ident) => {};
    (@bf16 [$($gen:tt)*] [$g:ident] ($($a:ident: $t:ty),*) $body:ident) => {
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,avx2,fma,f16c")]
        unsafe fn avx512bf16 $($gen)* ($($a: $t),*) {
            $body::<$crate::layer::lanes::Avx512Bf16, $g>($($a),*)
        }
    };
    (@avx512 [] ($($a:ident),*)) => { unsafe { avx512($($a),*) } };
    (@avx512 [$g:ident] ($($a:ident),*)) => {
        // `A::BF16` is a constant: the other types never instantiate `avx512bf16`.
        if <$g as $crate::layer::act::Act>::BF16 && $crate::layer::simd::bf16_instructions() {
            unsafe { avx512bf16::<$g>($($a),*) }
        } else {
            unsafe { avx512::<$g>($($a),*) }
        }
    };
}
pub(crate) use dispatch;
