/* <shmbus_frame.h> is <shmbus/shmbus_frame.h>: one include directory serves both spellings
 * (docs/install.md). */
#include "shmbus/shmbus_frame.h"
