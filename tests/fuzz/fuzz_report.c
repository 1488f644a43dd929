/* libFuzzer target: the report reader, as `faultctl report` meets a damaged
 * report.json: any JSON object is rendered as text, the one-line summary,
 * HTML (plots included) and JUnit, into memory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *rep = json_loadb((const char *)data, size, 0, NULL);
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (!json_is_object(rep))
		goto out;
	f = open_memstream(&out, &len);
	if (!f)
		goto out;
	report_text(f, rep);
	report_text_line(f, rep);
	report_html(f, rep);
	report_junit(f, &rep, 1);
	fclose(f);
	free(out);
out:
	json_decref(rep);
	return 0;
}
