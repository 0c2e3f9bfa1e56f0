# shellcheck shell=bash
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=utils/path_common.sh
. "$MAIN_ROOT/utils/path_common.sh"
