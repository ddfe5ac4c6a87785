"""The shop platforms' own CSV exports (Shopify, WooCommerce, Shopware 6) read as they are downloaded: the layouts,
their readers, and the check and import every CSV file (the command and the browser upload) goes through."""
