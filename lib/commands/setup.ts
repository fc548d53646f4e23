import type { Command } from 'commander';

import { libtorchTag } from '../native';
import { setup } from '../setup';
import { LIBTORCH_VERSION } from '../setup/pins';

interface SetupFlags {
  cuda: string;
  from?: string;
  sha256?: string;
  link?: string;
  force?: boolean;
}

/** Adds `videomae setup` to the program. */
export function register(program: Command): void {
  program
    .command('setup')
    .description(
      `Install libtorch ${LIBTORCH_VERSION} (pinned, checksum-verified) into the user cache and link it as the ` +
        "package's ./libtorch, where the prebuilt binaries and source builds find it",
    )
    .option('--cuda <which>', "'auto' (nvidia-smi decides), 'cpu', or a CUDA version such as 12.4", 'auto')
    .option('--from <path>', 'install offline: a libtorch folder (linked in place) or a .zip/.tar.gz archive')
    .option('--sha256 <hex>', 'the expected sha256 of the archive (downloaded or --from)')
    .option('--link <path>', "where to make the link (default: the package's ./libtorch)")
    .option('--force', 'download and unpack again even when the cache has it')
    .addHelpText(
      'after',
      '\nEnvironment:\n' +
        '  VIDEOMAE_LIBTORCH_MIRROR   base URL replacing https://download.pytorch.org/libtorch\n' +
        '  VIDEOMAE_CACHE_DIR         cache folder (default $XDG_CACHE_HOME/videomae-node or ~/.cache/videomae-node)\n' +
        '  VIDEOMAE_SETUP_PINS_JSON   {"<flavor>": {"sha256": "...", "path": "..."}} for mirrors with their own archives\n' +
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
            ? `The prebuilt binary for ${tag} will use it. Check with: npx videomae doctor\n`
            : `This package ships no prebuilt binary for ${tag}; build from source against it with npm run build ` +
              '(CMake looks in ./libtorch), then check with: npx videomae doctor\n'),
      );
    });
}
