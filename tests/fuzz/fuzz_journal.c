/* libFuzzer target: the undo journal's reader (journal_parse), on a torn
 * or damaged journal file. Only the parsing runs here: replaying would
 * delete namespaces and links. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *owner, **lines;
	size_t n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (journal_parse(text, &owner, &lines, &n) == 0) {
		if (owner && strncmp(owner, "owner ", 6))
			abort();
		for (size_t i = 0; i < n; i++)
			if (!strchr(lines[i], ' ') || strchr(lines[i], '\n') ||
			    lines[i] < text || lines[i] >= text + size)
				abort();
		free(lines);
	}
	free(text);
	return 0;
}
