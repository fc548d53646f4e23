import type { NativeRuntimeInfo } from '../binding';
import { native } from './native';

/** What the loaded addon was built against (libtorch version, CUDA) and what it sees now. */
export function runtimeInfo(): NativeRuntimeInfo {
  return native().runtimeInfo();
}
