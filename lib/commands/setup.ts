import type { Command } from 'commander';

import { libtorchTag } from '../native';
import { setup } from '../setup';
import { platformPins } from '../setup/pins';

interface SetupFlags {
  cuda: string;
  from?: string;
  sha256?: string;
  link?: string;
  force?: boolean;
}

/** Adds `videomae setup` to the program. */
export function register(program: Command): void {
  const builds = platformPins().map((p) => `${p.version} ${p.flavor}`).join(', ') || 'none on this platform';
  program
    .command('setup')
    .description(
      `Install libtorch from the official torch wheels (pinned and sha256-verified; here: ${builds}) into the ` +
        "user cache and link it as the package's ./libtorch, where the prebuilt binaries and source builds find it",
    )
    .option('--cuda <which>', "'auto' (nvidia-smi decides), 'cpu', or a CUDA version such as 13.0", 'auto')
    .option('--from <path>', 'install offline: a torch wheel (.whl; its nvidia-* wheels beside it), a folder of wheels, ' +
      'a libtorch folder (linked in place), or a libtorch .zip/.tar.gz')
    .option('--sha256 <hex>', 'the expected sha256 of a --from file that no pin names')
    .option('--link <path>', "where to make the link (default: the package's ./libtorch)")
    .option('--force', 'download and unpack again even when the cache has it')
    .addHelpText(
      'after',
      '\nEnvironment:\n' +
        '  VIDEOMAE_LIBTORCH_MIRROR   a static file server holding the wheels by file name (<mirror>/<wheel>),\n' +
        '                             instead of the official package indexes\n' +
        '  VIDEOMAE_CACHE_DIR         cache folder (default $XDG_CACHE_HOME/videomae-node or ~/.cache/videomae-node)\n' +
        '  VIDEOMAE_DOWNLOAD_TIMEOUT  seconds without data before a download fails (default 60)\n' +
        '  HTTPS_PROXY, HTTP_PROXY, NO_PROXY are honored.\n' +
        'See docs/INSTALLING.md.',
    )
    .action(async (flags: SetupFlags) => {
      const r = await setup({ cuda: flags.cuda, from: flags.from, sha256: flags.sha256, link: flags.link, force: flags.force });
      const tag = libtorchTag(r.libtorch);
      process.stdout.write(
        `libtorch ${r.libtorch.version ?? '(unknown version)'} (${r.libtorch.flavor}) is ready in ${r.dir}\n` +
          `Linked as ${r.link}\n` +
          (r.prebuild
            ? `The prebuilt ${tag} binary will use it. Check with: npx videomae doctor\n`
            : `This package ships no prebuilt binary for ${tag}; build from source against it with npm run build ` +
              '(CMake looks in ./libtorch), then check with: npx videomae doctor\n'),
      );
    });
}
