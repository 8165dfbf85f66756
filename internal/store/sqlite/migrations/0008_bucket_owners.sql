-- Every output bucket belongs to one account: the first to submit a job to it (store.Buckets).
-- The key is the bucket as the storage router names it: StorageType, the route's Endpoint in
-- lower case ("*" for a wildcard route) and the bucket name.
CREATE TABLE bucket_owners (
    storage_type TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    create_ms    INTEGER NOT NULL,
    PRIMARY KEY (storage_type, endpoint, bucket)
);
CREATE INDEX bucket_owners_account ON bucket_owners(account_id);
