'use strict';
// The machine a benchmark ran on, for its results: every result names the CPU.
const fs = require('node:fs');
const os = require('node:os');

/** The CPU (model name, family and model, the flags that decide the fast paths), cores, memory, kernel. */
function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || 'unknown';
  const flags = (cpuinfo.match(/^flags\s*:\s*(.*)$/m) || [])[1] || '';
  // "AMD EPYC" is all a Zen 3 and a Zen 4 VM say in their model name; family and model tell them apart.
  const field = (name) => (cpuinfo.match(new RegExp(`^${name}\\s*:\\s*(\\d+)$`, 'm')) || [])[1];
  const has = (flag) => new RegExp(`\\b${flag}\\b`).test(flags);
  return {
    cpu: model.trim(), cpu_family: field('cpu family'), cpu_model: field('model'),
    cores: os.availableParallelism(), memory_gb: +(os.totalmem() / 2 ** 30).toFixed(1),
    avx512: has('avx512f'), avx2: has('avx2'), avx512bf16: has('avx512_bf16'), amx: has('amx_bf16'),
    kernel: os.release(), platform: `${process.platform}-${process.arch}`,
  };
}

module.exports = { machine };
