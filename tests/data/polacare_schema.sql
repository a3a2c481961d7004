-- A PolaCare database as the platform's Prisma schema
-- (backend/prisma/schema.prisma of the PolaCare backend) creates it with
-- `prisma migrate`: the users, patient_cases and case_images tables (models
-- User, PatientCase and CaseImage with their enums), column for column: uuid ids, NOT NULL
-- columns polaimg does not know (phone_number, password, gender, date of
-- birth, weight, height, bmi, diagnosis ...), updated_at without a default,
-- lower-case enum labels. The platform's other tables are left out. Used by
-- names.test.mjs, which migrates it with `polaimg migrate` and serves it;
-- polacare_schema_legacy.sql is an older Prisma shape (text ids, upper-case
-- enums) for deploy.test.mjs.
CREATE TYPE "UserRole" AS ENUM ('patient', 'doctor', 'admin');
CREATE TYPE "Gender" AS ENUM ('Male', 'Female', 'Other');
CREATE TYPE "CaseStatus" AS ENUM ('Draft', 'Finalized');
CREATE TYPE "EyeSide" AS ENUM ('left', 'right', 'both', 'unknown');

CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "phone_number" VARCHAR(20) NOT NULL,
    "password" VARCHAR(255) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "hn" VARCHAR(50) NOT NULL,
    "avatar_url" VARCHAR(500),
    "gender" "Gender" NOT NULL,
    "date_of_birth" DATE NOT NULL,
    "weight" DECIMAL(5,2) NOT NULL,
    "height" DECIMAL(5,2) NOT NULL,
    "bmi" DECIMAL(4,2) NOT NULL,
    "role" "UserRole" NOT NULL DEFAULT 'patient',
    "is_verified" BOOLEAN NOT NULL DEFAULT false,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "last_login_at" TIMESTAMPTZ(6),
    "license_number" VARCHAR(100),
    "specialization" VARCHAR(255),
    "department" VARCHAR(255),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "users_phone_number_key" ON "users"("phone_number");
CREATE UNIQUE INDEX "users_hn_key" ON "users"("hn");

CREATE TABLE "patient_cases" (
    "id" UUID NOT NULL,
    "patient_id" UUID NOT NULL,
    "hn" VARCHAR(50) NOT NULL,
    "patient_name" VARCHAR(255) NOT NULL,
    "date" DATE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "diagnosis" VARCHAR(255) NOT NULL,
    "ai_analysis_text" TEXT,
    "doctor_notes" TEXT,
    "status" "CaseStatus" NOT NULL DEFAULT 'Draft',
    "left_eye_visual_acuity" VARCHAR(50),
    "left_eye_intraocular_pressure" VARCHAR(50),
    "left_eye_diagnosis" VARCHAR(255),
    "left_eye_note" TEXT,
    "right_eye_visual_acuity" VARCHAR(50),
    "right_eye_intraocular_pressure" VARCHAR(50),
    "right_eye_diagnosis" VARCHAR(255),
    "right_eye_note" TEXT,
    "created_by" UUID,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,
    CONSTRAINT "patient_cases_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "idx_cases_patient" ON "patient_cases"("patient_id");

CREATE TABLE "case_images" (
    "id" UUID NOT NULL,
    "case_id" UUID NOT NULL,
    "image_url" VARCHAR(500) NOT NULL,
    "thumbnail_url" VARCHAR(500),
    "storage_type" VARCHAR(20) NOT NULL DEFAULT 'local',
    "image_type" VARCHAR(50) NOT NULL,
    "eye_side" "EyeSide" NOT NULL DEFAULT 'unknown',
    "captured_at" TIMESTAMPTZ(6),
    "description" TEXT,
    "order" INTEGER NOT NULL DEFAULT 0,
    "file_size" INTEGER,
    "mime_type" VARCHAR(50),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,
    CONSTRAINT "case_images_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "idx_images_case" ON "case_images"("case_id");

ALTER TABLE "patient_cases" ADD CONSTRAINT "patient_cases_patient_id_fkey" FOREIGN KEY ("patient_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "patient_cases" ADD CONSTRAINT "patient_cases_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "case_images" ADD CONSTRAINT "case_images_case_id_fkey" FOREIGN KEY ("case_id") REFERENCES "patient_cases"("id") ON DELETE CASCADE ON UPDATE CASCADE;
