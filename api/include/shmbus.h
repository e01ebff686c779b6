/* <shmbus.h> is <shmbus/shmbus.h>: one include directory serves both spellings
 * (docs/install.md). */
#include "shmbus/shmbus.h"
