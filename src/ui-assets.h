/* The operator console's files (ui/), compiled in by ui/embed.sh and
 * served by the control API under /ui/. */
#ifndef RECONCILED_UI_ASSETS_H
#define RECONCILED_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char	*path;		/* "/ui/" for index.html */
	const char	*type;		/* Content-Type */
	const char	*text;
};

extern const struct ui_asset	ui_assets[];
extern const size_t		ui_asset_count;

#endif
