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

/// Defines `fn NAME(args)`, with the visibility given, which runs `BODY::<L: Lanes>(args)`
/// compiled for [`simd_level`], and `fn AT(level, args)`, which forces a level (capped at
/// what the CPU has; tests compare levels with it). With `fn NAME<A: Act> / AT (args)` both
/// are generic over the storage type `A` and run `BODY::<L, A>(args)`.
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
                match level.min(detected_level()) {
                    // SAFETY: the CPU reported these features (detected_level caps the request).
                    SimdLevel::Avx512 => return unsafe { avx512 $(::<$g>)? ($($a),*) },
                    SimdLevel::Avx2 => return unsafe { avx2 $(::<$g>)? ($($a),*) },
                    SimdLevel::Scalar => {}
                }
            }
            let _ = level;
            $body::<$crate::layer::lanes::Scalar $(, $g)?>($($a),*)
        }
    };
}
pub(crate) use dispatch;
