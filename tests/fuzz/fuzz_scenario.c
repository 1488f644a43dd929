/* libFuzzer target: the scenario parser (scenario_parse), on any bytes.
 * Either a scenario or errors that each name FILE:LINE:COL, never both. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scenario *sc = NULL;
	char *errors = NULL;
	int err;

	log_set_level(LOG_ERR);
	err = scenario_parse("fuzz.json", (const char *)data, size, &sc, &errors);
	if (err == 0 && (!sc || errors))
		abort();
	if (err == -EINVAL && (sc || !errors || strncmp(errors, "fuzz.json:", 10)))
		abort();
	scenario_free(sc);
	free(errors);
	return 0;
}
