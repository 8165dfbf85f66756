-- Every output bucket belongs to one account: the first to submit a job to it (store.Buckets).
-- The key is the bucket as the storage router names it: StorageType, the route's Endpoint in
-- lower case ("*" for a wildcard route) and the bucket name.
CREATE TABLE bucket_owners (
    storage_type TEXT COLLATE "C" NOT NULL,
    endpoint     TEXT COLLATE "C" NOT NULL,
    bucket       TEXT COLLATE "C" NOT NULL,
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    create_ms    BIGINT NOT NULL,
    PRIMARY KEY (storage_type, endpoint, bucket)
);
CREATE INDEX bucket_owners_account ON bucket_owners(account_id);
