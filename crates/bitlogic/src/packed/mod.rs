//! Bit-packed inference (see SPEC §3). Work in progress.
