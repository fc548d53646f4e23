'use strict';
// What this CPU offers for low-precision work, read from /proc/cpuinfo's flags as `grep` would:
// the tests' own account, independent of the addon's cpuid checks and of oneDNN's.
const fs = require('node:fs');

const { runtimeInfo } = require('../..');

const text = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
const FLAGS = new Set(((text.match(/^flags\s*:(.*)$/m) ?? [])[1] ?? '').split(/\s+/).filter(Boolean));

/** True when the CPU has every one of these /proc/cpuinfo flags. */
const hasFlags = (...names) => names.every((n) => FLAGS.has(n));

const [major, minor] = runtimeInfo().libtorchVersion.split('.').map(Number);
/** The addon was built against libtorch >= 2.1 (oneDNN's packed linear, SDPA). */
const TORCH_2_1 = major > 2 || (major === 2 && minor >= 1);

/**
 * libtorch runs bfloat16 natively here, so the addon accepts dtype 'bfloat16' on the CPU: AVX-512
 * F/BW/VL/DQ (oneDNN's avx512_core; 1.13's mkldnn_bf16_device_check), or on libtorch >= 2.1 also
 * AVX2-VNNI-2 (ideep::has_bf16_type_support). Elsewhere bfloat16 is emulated and refused.
 */
const AVX2_VNNI_2 = hasFlags('avx_vnni', 'avx_vnni_int8', 'avx_ne_convert');
const BF16_NATIVE = hasFlags('avx512f', 'avx512bw', 'avx512vl', 'avx512dq') || (TORCH_2_1 && AVX2_VNNI_2);

/**
 * oneDNN runs float16 GEMMs here, so the addon accepts dtype 'float16' on the CPU: libtorch >= 2.1
 * and AVX512-FP16, AMX-FP16 or AVX2-VNNI-2 (ideep::has_fp16_type_support). Elsewhere it is refused.
 */
const FP16_NATIVE = TORCH_2_1 && (hasFlags('avx512_fp16') || hasFlags('amx_fp16') || AVX2_VNNI_2);

/** The message of the refusal where BF16_NATIVE is false. */
const BF16_REFUSED = /Expected dtype 'float32' on this CPU but received 'bfloat16': this CPU has no bfloat16 instructions/;

module.exports = { TORCH_2_1, BF16_NATIVE, BF16_REFUSED, FP16_NATIVE };
