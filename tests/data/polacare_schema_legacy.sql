-- A PolaCare database as the Node backend's Prisma schema leaves it: text
-- ids, enum types "UserRole" and "EyeSide" with upper-case labels, camel-case
-- models mapped to snake_case columns, timestamp(3) without time zone, and
-- case_images rows written by the old backend. Used by deploy.test.mjs to
-- check that `polaimg migrate` extends such a database without losing a row.
CREATE TYPE "UserRole" AS ENUM ('PATIENT', 'DOCTOR', 'ADMIN');
CREATE TYPE "EyeSide" AS ENUM ('LEFT', 'RIGHT', 'BOTH');

CREATE TABLE users (
    id          text PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    role        "UserRole" NOT NULL DEFAULT 'PATIENT',
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  timestamp(3) NOT NULL
);

CREATE TABLE patient_cases (
    id          text PRIMARY KEY,
    patient_id  text NOT NULL REFERENCES users (id),
    title       text NOT NULL,
    created_at  timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  timestamp(3) NOT NULL
);

CREATE TABLE case_images (
    id             text PRIMARY KEY,
    case_id        text NOT NULL REFERENCES patient_cases (id) ON DELETE CASCADE,
    image_url      text NOT NULL,
    thumbnail_url  text,
    storage_type   text NOT NULL DEFAULT 's3',
    eye_side       "EyeSide",
    description    text,
    "order"        integer NOT NULL DEFAULT 0,
    created_at     timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at     timestamp(3) NOT NULL
);
